/** "1.50 s", "850 ms" */
export function formatInterval(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '—'
  if (ms < 1000) return `${Math.round(ms)} ms`
  return `${(ms / 1000).toFixed(2)} s`
}

/** "just now", "12 s ago", "3 min ago", "2 h ago" */
export function formatAgo(then: number, now: number): string {
  const s = Math.max(0, Math.round((now - then) / 1000))
  if (s < 2) return 'just now'
  if (s < 60) return `${s} s ago`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ago`
  return `${Math.floor(m / 60)} h ago`
}

/** "45 s", "12 min", "3 h 5 min", "2 d 4 h" */
export function formatUptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h} h ${m % 60} min`
  return `${Math.floor(h / 24)} d ${h % 24} h`
}

const grouping = new Intl.NumberFormat('en-US')

/** 12345 → "12,345" */
export function formatCount(n: number | null | undefined): string {
  return n === null || n === undefined ? '—' : grouping.format(n)
}

/** First block of a UUID, for compact display: "3f2a9c1b…" */
export function shortId(id: string, size = 8): string {
  return id.length <= size ? id : `${id.slice(0, size)}…`
}
