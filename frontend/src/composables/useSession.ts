import { computed, ref, shallowRef, type MaybeRefOrGetter } from 'vue'

import { api } from '@/api/client'
import type { SessionResponse } from '@/api/types'

import { usePoller } from './usePoller'

/** One answered poll of `GET /api/`. */
export interface ServedSample {
  seq: number
  servedBy: string
  at: number
}

export interface ReplicaShare {
  name: string
  count: number
  /** 0..1 of the samples in the window */
  share: number
}

export interface SessionOptions {
  interval: MaybeRefOrGetter<number>
  enabled?: MaybeRefOrGetter<boolean>
  /** How many recent requests the chart keeps. */
  historySize?: number
}

/**
 * Polls `GET /api/` (which also counts the visit in Redis) and remembers which
 * replica answered each of the last `historySize` polls.
 */
export function useSession(options: SessionOptions) {
  const historySize = options.historySize ?? 40
  const history = shallowRef<ServedSample[]>([])
  /** Times the answering replica changed while the session stayed the same. */
  const hops = ref(0)
  /** Every replica that answered this page, in order of first appearance. */
  const seen = shallowRef<string[]>([])
  let seq = 0

  function record(next: SessionResponse, previous: SessionResponse | null): void {
    seq++
    const sample: ServedSample = { seq, servedBy: next.served_by, at: Date.now() }
    history.value = [...history.value, sample].slice(-historySize)
    if (!seen.value.includes(next.served_by)) seen.value = [...seen.value, next.served_by]
    if (previous !== null && previous.session_id === next.session_id && previous.served_by !== next.served_by) {
      hops.value++
    }
  }

  const poller = usePoller((signal) => api.session(signal), {
    interval: options.interval,
    enabled: options.enabled,
    onSuccess: (next) => record(next, poller.data.value),
  })

  const shares = computed<ReplicaShare[]>(() => {
    const counts = new Map<string, number>()
    for (const s of history.value) counts.set(s.servedBy, (counts.get(s.servedBy) ?? 0) + 1)
    const total = history.value.length
    return [...counts.entries()]
      .map(([name, count]) => ({ name, count, share: total === 0 ? 0 : count / total }))
      .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
  })

  return {
    ...poller,
    session: poller.data,
    history,
    historySize,
    shares,
    seen,
    hops,
  }
}

export type SessionState = ReturnType<typeof useSession>
