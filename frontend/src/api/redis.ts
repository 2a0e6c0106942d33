// `GET /redis`: the Redis tier as the answering replica sees it. Its type, decoder and
// fetch live here, apart from types.ts/decode.ts, so the panel stands on its own.
import { ApiError, request } from './client'
import { DecodeError } from './decode'

export type RedisMode = 'standalone' | 'sentinel'

/** A replica of the primary, from its `INFO replication`. */
export interface RedisReplica {
  addr: string
  /** As Redis says: `online`, `wait_bgsave`, `send_bulk`. */
  state: string
  /** Bytes behind the primary's replication offset. */
  lag_bytes: number
  /** Seconds since its last acknowledgement. */
  lag_secs: number
}

/** A configured Sentinel and whether it answered a PING. */
export interface RedisSentinel {
  addr: string
  up: boolean
}

/** GET /redis */
export interface RedisTier {
  served_by: string
  mode: RedisMode
  /** The primary's name at the Sentinels; null standalone. */
  master_name: string | null
  /** "host:port", or null while no primary is known (mid-failover). */
  primary: string | null
  primary_reachable: boolean
  /** ROLE said master at the answering replica's last check. */
  on_primary: boolean
  replicas: RedisReplica[]
  sentinels: RedisSentinel[]
  /** When the answering replica last switched primary (unix ms); null if never. */
  last_failover_ms: number | null
  /** `REDIS_WAIT_REPLICAS`: replicas each write waits for (0: off). */
  wait_replicas: number
}

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

type Obj = Record<string, unknown>

function obj(u: unknown, what: string): Obj {
  if (typeof u !== 'object' || u === null || Array.isArray(u)) throw new DecodeError(`${what}: expected an object`)
  return u as Obj
}

function field<T>(o: Obj, key: string, ok: (v: unknown) => v is T, what: string): T {
  const v = o[key]
  if (!ok(v)) throw new DecodeError(`field "${key}" should be ${what}`)
  return v
}

const isStr = (v: unknown): v is string => typeof v === 'string'
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
const isBool = (v: unknown): v is boolean => typeof v === 'boolean'
const isStrOrNull = (v: unknown): v is string | null => v === null || isStr(v)
const isNumOrNull = (v: unknown): v is number | null => v === null || isNum(v)
const isMode = (v: unknown): v is RedisMode => v === 'standalone' || v === 'sentinel'
const isArr = (v: unknown): v is unknown[] => Array.isArray(v)

export function decodeRedis(u: unknown): RedisTier {
  const o = obj(u, 'redis')
  return {
    served_by: field(o, 'served_by', isStr, 'a string'),
    mode: field(o, 'mode', isMode, '"standalone" or "sentinel"'),
    master_name: field(o, 'master_name', isStrOrNull, 'a string or null'),
    primary: field(o, 'primary', isStrOrNull, 'a string or null'),
    primary_reachable: field(o, 'primary_reachable', isBool, 'a boolean'),
    on_primary: field(o, 'on_primary', isBool, 'a boolean'),
    replicas: field(o, 'replicas', isArr, 'an array').map((r) => {
      const x = obj(r, 'replica')
      return {
        addr: field(x, 'addr', isStr, 'a string'),
        state: field(x, 'state', isStr, 'a string'),
        lag_bytes: field(x, 'lag_bytes', isNum, 'a number'),
        lag_secs: field(x, 'lag_secs', isNum, 'a number'),
      }
    }),
    sentinels: field(o, 'sentinels', isArr, 'an array').map((s) => {
      const x = obj(s, 'sentinel')
      return { addr: field(x, 'addr', isStr, 'a string'), up: field(x, 'up', isBool, 'a boolean') }
    }),
    last_failover_ms: field(o, 'last_failover_ms', isNumOrNull, 'a number or null'),
    wait_replicas: field(o, 'wait_replicas', isNum, 'a number'),
  }
}
