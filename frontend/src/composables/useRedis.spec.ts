import { describe, expect, it, vi } from 'vitest'

import type { RedisTier } from '@/api/types'
import { composableScope, jsonResponse, mockFetch } from '@/test/helpers'

import { useRedis } from './useRedis'

const tier = (primary: string | null, last_failover_ms: number | null): RedisTier => ({
  served_by: 'app-1',
  mode: 'sentinel',
  master_name: 'mymaster',
  primary,
  primary_reachable: primary !== null,
  on_primary: primary !== null,
  replicas: [],
  sentinels: [{ addr: '127.0.0.1:26379', up: true }],
  last_failover_ms,
  wait_replicas: 0,
})

describe('useRedis', () => {
  const scope = composableScope()

  it('follows a failover poll by poll: no primary, then the new one with its time', async () => {
    const answers = [tier('127.0.0.1:7001', null), tier(null, null), tier('127.0.0.1:7002', 1_700_000_000_000)]
    let n = 0
    mockFetch({ 'GET /api/redis': () => jsonResponse(answers[Math.min(n++, answers.length - 1)]) })
    const r = scope().run(() => useRedis({ interval: 4000 }))!
    expect(r.tier.value).toBeNull()
    await vi.advanceTimersByTimeAsync(0)
    expect(r.tier.value?.primary).toBe('127.0.0.1:7001')
    await vi.advanceTimersByTimeAsync(4000)
    expect(r.tier.value?.primary).toBeNull()
    await vi.advanceTimersByTimeAsync(4000)
    expect(r.tier.value?.primary).toBe('127.0.0.1:7002')
    expect(r.tier.value?.last_failover_ms).toBe(1_700_000_000_000)
    expect(r.unavailable.value).toBe(false)
    expect(r.error.value).toBeNull()
  })

  it('treats a 404 as "not available", not as an error, and keeps polling', async () => {
    const fetch = mockFetch({})
    const r = scope().run(() => useRedis({ interval: 4000 }))!
    await vi.advanceTimersByTimeAsync(0)
    expect(r.unavailable.value).toBe(true)
    expect(r.tier.value).toBeNull()
    expect(r.error.value).toBeNull()
    await vi.advanceTimersByTimeAsync(4000)
    expect(fetch).toHaveBeenCalledTimes(2)
  })

  it('reports other failures as errors', async () => {
    mockFetch({ 'GET /api/redis': () => jsonResponse({ error: 'bad gateway' }, 502) })
    const r = scope().run(() => useRedis({ interval: 4000 }))!
    await vi.advanceTimersByTimeAsync(0)
    expect(r.error.value).toBe('bad gateway (HTTP 502)')
    expect(r.unavailable.value).toBe(false)
  })
})
