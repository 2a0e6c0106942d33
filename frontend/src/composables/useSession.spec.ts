import { describe, expect, it, vi } from 'vitest'

import { composableScope, jsonResponse, mockFetch, session } from '@/test/helpers'

import { useSession } from './useSession'

describe('useSession', () => {
  const scope = composableScope()

  function answers(list: ReturnType<typeof session>[]) {
    let i = 0
    return mockFetch({
      'GET /api/': () => {
        const next = list[Math.min(i++, list.length - 1)]
        return jsonResponse(next)
      },
    })
  }

  it('remembers which replica served each poll, newest last, up to the window size', async () => {
    answers([1, 2, 3, 4, 5].map((n) => session(`app-${((n - 1) % 3) + 1}`, n)))
    const s = scope().run(() => useSession({ interval: 1000, historySize: 4 }))!
    await vi.advanceTimersByTimeAsync(4000)
    expect(s.history.value.map((h) => h.servedBy)).toEqual(['app-2', 'app-3', 'app-1', 'app-2'])
    expect(s.history.value.map((h) => h.seq)).toEqual([2, 3, 4, 5])
    expect(s.session.value?.session_count).toBe(5)
    expect(s.seen.value).toEqual(['app-1', 'app-2', 'app-3'])
  })

  it('computes each replica share of the window, sorted by name', async () => {
    answers([session('app-2', 1), session('app-10', 2), session('app-2', 3), session('app-1', 4)])
    const s = scope().run(() => useSession({ interval: 1000 }))!
    await vi.advanceTimersByTimeAsync(3000)
    expect(s.shares.value).toEqual([
      { name: 'app-1', count: 1, share: 0.25 },
      { name: 'app-2', count: 2, share: 0.5 },
      { name: 'app-10', count: 1, share: 0.25 },
    ])
  })

  it('counts replica hops only while the session stays the same', async () => {
    answers([
      session('app-1', 1),
      session('app-2', 2),
      session('app-2', 3),
      session('app-3', 1, 'sid-2'), // a new session: not a hop
      session('app-1', 2, 'sid-2'),
    ])
    const s = scope().run(() => useSession({ interval: 1000 }))!
    await vi.advanceTimersByTimeAsync(4000)
    expect(s.hops.value).toBe(2)
  })

  it('keeps the last session on screen while polls fail', async () => {
    let fail = false
    mockFetch({
      'GET /api/': () => (fail ? jsonResponse({ error: 'redis unavailable' }, 503) : jsonResponse(session('app-1', 1))),
    })
    const s = scope().run(() => useSession({ interval: 1000 }))!
    await vi.advanceTimersByTimeAsync(0)
    fail = true
    await vi.advanceTimersByTimeAsync(1000)
    expect(s.error.value).toBe('redis unavailable (HTTP 503)')
    expect(s.session.value?.served_by).toBe('app-1')
    expect(s.history.value).toHaveLength(1)
  })
})
