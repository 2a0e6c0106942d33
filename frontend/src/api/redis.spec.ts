import { describe, expect, it } from 'vitest'

import { jsonResponse, mockFetch, sentinelTier, standaloneTier } from '@/test/helpers'

import { ApiError } from './client'
import { DecodeError, decodeRedis } from './decode'
import { fetchRedis } from './redis'

describe('decodeRedis', () => {
  it('decodes both modes, nulls included', () => {
    expect(decodeRedis(sentinelTier)).toEqual(sentinelTier)
    expect(decodeRedis(standaloneTier)).toEqual(standaloneTier)
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
