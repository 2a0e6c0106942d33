import { describe, expect, it } from 'vitest'

import { jsonResponse, mockFetch } from '@/test/helpers'

import { ApiError } from './client'
import { DecodeError, decodeRedis } from './decode'
import { fetchRedis } from './redis'
import type { RedisTier } from './types'

const sentinelTier: RedisTier = {
  served_by: 'app-2',
  mode: 'sentinel',
  master_name: 'mymaster',
  primary: '127.0.0.1:7001',
  primary_reachable: true,
  on_primary: true,
  replicas: [{ addr: '127.0.0.1:7002', state: 'online', lag_bytes: 14, lag_secs: 0 }],
  sentinels: [
    { addr: '127.0.0.1:26379', up: true },
    { addr: '127.0.0.1:26380', up: false },
  ],
  last_failover_ms: null,
  wait_replicas: 1,
}

describe('decodeRedis', () => {
  it('decodes both modes, nulls included', () => {
    expect(decodeRedis(sentinelTier)).toEqual(sentinelTier)
    const standalone = {
      ...sentinelTier,
      mode: 'standalone',
      master_name: null,
      replicas: [],
      sentinels: [],
      last_failover_ms: null,
      wait_replicas: 0,
    }
    expect(decodeRedis(standalone)).toEqual(standalone)
    expect(decodeRedis({ ...sentinelTier, primary: null, last_failover_ms: 1_700_000_000_000 }).primary).toBeNull()
  })

  it('rejects an unknown mode and mistyped fields, naming the field', () => {
    expect(() => decodeRedis({ ...sentinelTier, mode: 'cluster' })).toThrow(DecodeError)
    expect(() => decodeRedis({ ...sentinelTier, mode: 'cluster' })).toThrow('"mode"')
    expect(() => decodeRedis({ ...sentinelTier, last_failover_ms: '12' })).toThrow('"last_failover_ms"')
    expect(() => decodeRedis({ ...sentinelTier, replicas: [{ addr: 'x', state: 'online', lag_bytes: 1 }] })).toThrow(
      '"lag_secs"',
    )
    expect(() => decodeRedis({ ...sentinelTier, sentinels: [{ addr: 'x', up: 'yes' }] })).toThrow('"up"')
    expect(() => decodeRedis([])).toThrow('expected an object')
  })

  it('fetches /api/redis; a 404 means "not available", any other error is thrown', async () => {
    mockFetch({ 'GET /api/redis': () => jsonResponse(sentinelTier) })
    expect(await fetchRedis()).toEqual({ available: true, tier: sentinelTier })

    mockFetch({})
    expect(await fetchRedis()).toEqual({ available: false })

    mockFetch({ 'GET /api/redis': () => jsonResponse({ error: 'boom' }, 500) })
    await expect(fetchRedis()).rejects.toBeInstanceOf(ApiError)
  })
})
