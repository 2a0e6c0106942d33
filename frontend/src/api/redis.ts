// `GET /redis`: the Redis tier as the answering replica sees it. Its type and decoder come
// from the Rust types like every other response (generated.ts); this file adds the fetch,
// where a 404 (a build without the route) is a state to show, not an error.
import { ApiError, request } from './client'
import { decodeRedis } from './decode'
import type { RedisTier } from './types'

/**
 * One poll of `/redis`: the tier, or `available: false` when the API answers 404, i.e.
 * a build that does not have the route yet. That is a state to show, not an error.
 */
export type RedisPoll = { available: true; tier: RedisTier } | { available: false }

export async function fetchRedis(signal?: AbortSignal): Promise<RedisPoll> {
  try {
    return { available: true, tier: await request('/redis', decodeRedis, { signal }) }
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return { available: false }
    throw err
  }
}
