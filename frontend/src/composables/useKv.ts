import { ref, shallowRef } from 'vue'

import { ApiError, api, describeError, timeoutSignal } from '@/api/client'
import type { KvResponse } from '@/api/types'

export type KvOp = 'set' | 'get'

/** One set or get, and which replica answered it. */
export interface KvEntry {
  seq: number
  op: KvOp
  key: string
  /** The value stored or read; null when the request failed. */
  value: string | null
  servedBy: string | null
  /** Failure sentence (e.g. "key not found"); null on success. */
  error: string | null
  at: number
}

const ACTION_TIMEOUT_MS = 5000

/** Shared key/value through `PUT /api/kv/{key}` and `GET /api/kv/{key}`. */
export function useKv(logSize = 6) {
  const log = shallowRef<KvEntry[]>([])
  const busy = ref(false)
  let seq = 0

  function push(entry: Omit<KvEntry, 'seq' | 'at'>): KvEntry {
    seq++
    const full: KvEntry = { ...entry, seq, at: Date.now() }
    log.value = [full, ...log.value].slice(0, logSize)
    return full
  }

  async function run(op: KvOp, key: string, call: (signal: AbortSignal) => Promise<KvResponse>): Promise<KvEntry> {
    busy.value = true
    const { signal, cancel } = timeoutSignal(ACTION_TIMEOUT_MS)
    try {
      const res = await call(signal)
      return push({ op, key: res.key, value: res.value, servedBy: res.served_by, error: null })
    } catch (err) {
      const message =
        err instanceof ApiError && err.status === 404
          ? 'key not found'
          : describeError(signal.aborted ? signal.reason : err)
      return push({ op, key, value: null, servedBy: null, error: message })
    } finally {
      cancel()
      busy.value = false
    }
  }

  return {
    log,
    busy,
    set: (key: string, value: string) => run('set', key, (signal) => api.setKey(key, value, signal)),
    get: (key: string) => run('get', key, (signal) => api.getKey(key, signal)),
  }
}

export type KvState = ReturnType<typeof useKv>
