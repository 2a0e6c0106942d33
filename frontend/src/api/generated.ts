// Generated from the Rust response types by src/routes/contract.rs: do not edit.
// `UPDATE_CONTRACT=1 cargo test --lib contract` rewrites it. Timestamps are unix ms.
import type { Shape } from './decode'

/**
 * The answer of `GET /`.
 */
export type SessionResponse = { served_by: string, session_id: string, session_count: number, global_count: number, new_session: boolean };

/**
 * What kind of process an entry describes.
 */
export type InstanceRole = "app" | "worker";

/**
 * One live process, as `/instances` shows it. Timestamps are unix ms.
 */
export type Instance = { name: string, role: InstanceRole, started_at: number, last_seen: number, handled: number, draining: boolean };

/**
 * The answer of `GET /instances`.
 */
export type InstancesResponse = { served_by: string, instances: Array<Instance> };

/**
 * The answer of every key/value route.
 */
export type KvResponse = { key: string, value: string, served_by: string };

/**
 * The answer of `GET /enqueue` and `POST /jobs`.
 */
export type EnqueueResponse = { /** The job's name. */ enqueued: string, id: string, queue_length: number, served_by: string, /** The job that already had this id, when nothing was queued. */ job?: Job };

/**
 * Where a job is in its life.
 */
export type JobStatus = "queued" | "processing" | "done" | "failed" | "dead";

/**
 * A job as the API shows it: the public fields of its `job:<id>` hash.
 */
export type Job = { id: string, name: string, status: JobStatus, /** How many times a worker has claimed it (a reclaimed run counts too). */ attempts: number, /** The worker that has it or last had it. */ worker: string | null, enqueued_at: number, updated_at: number, last_error: string | null };

/**
 * The answer of `GET /jobs`: the most recent jobs and where all the others are.
 */
export type JobsResponse = { jobs: Array<Job>, served_by: string, queue_length: number, /** Claimed and not yet finished, summed over every worker's processing list. */ processing_length: number, /** Failed and waiting for their retry time. */ delayed_length: number, dead_length: number };

export type HealthStatus = "ok" | "draining";

/**
 * The body of `/healthz`.
 */
export type HealthResponse = { status: HealthStatus };

export type ReadyStatus = "ready" | "draining" | "unavailable";

/**
 * The body of `/readyz`.
 */
export type ReadyResponse = { status: ReadyStatus, /** Why not ready, in words. */ reason?: string };

/**
 * Where Redis is: one server (`REDIS_URL`), or the primary the Sentinels name.
 */
export type RedisMode = "standalone" | "sentinel";

/**
 * One replica, from the primary's `INFO replication`.
 */
export type RedisReplica = { addr: string, /** `online`, `wait_bgsave`, `send_bulk`: as Redis says. */ state: string, /** How far behind the primary's replication offset it is, in bytes. */ lag_bytes: number, /** Seconds since its last acknowledgement. */ lag_secs: number };

/**
 * A configured Sentinel and whether it answered a PING.
 */
export type RedisSentinel = { addr: string, up: boolean };

/**
 * The body of `GET /redis`.
 */
export type RedisTier = { served_by: string, mode: RedisMode, /** The primary's name at the Sentinels; null standalone. */ master_name: string | null, /** `host:port`, or null while no primary is known (mid-failover). */ primary: string | null, primary_reachable: boolean, /** `ROLE` said master at the answering replica's last check. */ on_primary: boolean, replicas: Array<RedisReplica>, sentinels: Array<RedisSentinel>, /** When the answering replica last switched primary (unix ms); null if never. */ last_failover_ms: number | null, /** `REDIS_WAIT_REPLICAS`: replicas each write waits for (0: off). */ wait_replicas: number };

/**
 * Every error body, of every server: one sentence for a human.
 */
export type ErrorResponse = { error: string };

/** Every type by name: what `decode(name, ...)` returns. */
export interface ApiTypes {
  SessionResponse: SessionResponse
  InstanceRole: InstanceRole
  Instance: Instance
  InstancesResponse: InstancesResponse
  KvResponse: KvResponse
  EnqueueResponse: EnqueueResponse
  JobStatus: JobStatus
  Job: Job
  JobsResponse: JobsResponse
  HealthStatus: HealthStatus
  HealthResponse: HealthResponse
  ReadyStatus: ReadyStatus
  ReadyResponse: ReadyResponse
  RedisMode: RedisMode
  RedisReplica: RedisReplica
  RedisSentinel: RedisSentinel
  RedisTier: RedisTier
  ErrorResponse: ErrorResponse
}

/** The runtime shape of each type, for decode.ts. */
export const schema = {
  SessionResponse: { fields: { served_by: 'string', session_id: 'string', session_count: 'number', global_count: 'number', new_session: 'boolean' } },
  InstanceRole: { oneOf: ['app', 'worker'] },
  Instance: { fields: { name: 'string', role: { ref: 'InstanceRole' }, started_at: 'number', last_seen: 'number', handled: 'number', draining: 'boolean' } },
  InstancesResponse: { fields: { served_by: 'string', instances: { array: { ref: 'Instance' } } } },
  KvResponse: { fields: { key: 'string', value: 'string', served_by: 'string' } },
  EnqueueResponse: { fields: { enqueued: 'string', id: 'string', queue_length: 'number', served_by: 'string', job: { optional: { ref: 'Job' } } } },
  JobStatus: { oneOf: ['queued', 'processing', 'done', 'failed', 'dead'] },
  Job: { fields: { id: 'string', name: 'string', status: { ref: 'JobStatus' }, attempts: 'number', worker: { nullable: 'string' }, enqueued_at: 'number', updated_at: 'number', last_error: { nullable: 'string' } } },
  JobsResponse: { fields: { jobs: { array: { ref: 'Job' } }, served_by: 'string', queue_length: 'number', processing_length: 'number', delayed_length: 'number', dead_length: 'number' } },
  HealthStatus: { oneOf: ['ok', 'draining'] },
  HealthResponse: { fields: { status: { ref: 'HealthStatus' } } },
  ReadyStatus: { oneOf: ['ready', 'draining', 'unavailable'] },
  ReadyResponse: { fields: { status: { ref: 'ReadyStatus' }, reason: { optional: 'string' } } },
  RedisMode: { oneOf: ['standalone', 'sentinel'] },
  RedisReplica: { fields: { addr: 'string', state: 'string', lag_bytes: 'number', lag_secs: 'number' } },
  RedisSentinel: { fields: { addr: 'string', up: 'boolean' } },
  RedisTier: { fields: { served_by: 'string', mode: { ref: 'RedisMode' }, master_name: { nullable: 'string' }, primary: { nullable: 'string' }, primary_reachable: 'boolean', on_primary: 'boolean', replicas: { array: { ref: 'RedisReplica' } }, sentinels: { array: { ref: 'RedisSentinel' } }, last_failover_ms: { nullable: 'number' }, wait_replicas: 'number' } },
  ErrorResponse: { fields: { error: 'string' } },
} as const satisfies Record<keyof ApiTypes, Shape>
