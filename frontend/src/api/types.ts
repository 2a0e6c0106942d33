// Response shapes of the scaleout app API (see the shared contract).
// Timestamps are unix milliseconds.

/** GET / */
export interface SessionResponse {
  served_by: string
  session_id: string
  session_count: number
  global_count: number
  new_session: boolean
}

export type InstanceRole = 'app' | 'worker'

export interface Instance {
  name: string
  role: InstanceRole
  started_at: number
  last_seen: number
  /** requests served (app) or jobs processed (worker) */
  handled: number
  draining: boolean
}

/** GET /instances */
export interface InstancesResponse {
  served_by: string
  instances: Instance[]
}

/** GET /set, PUT /kv/{key}, GET /get, GET /kv/{key} */
export interface KvResponse {
  key: string
  value: string
  served_by: string
}

/** GET /enqueue, POST /jobs */
export interface EnqueueResponse {
  enqueued: string
  id: string
  queue_length: number
  served_by: string
}

export const JOB_STATUSES = ['queued', 'processing', 'done', 'failed', 'dead'] as const
export type JobStatus = (typeof JOB_STATUSES)[number]

/** GET /jobs/{id} */
export interface Job {
  id: string
  name: string
  status: JobStatus
  attempts: number
  worker: string | null
  enqueued_at: number
  updated_at: number
  last_error: string | null
}

/** GET /jobs */
export interface JobsResponse {
  jobs: Job[]
  queue_length: number
  processing_length: number
  dead_length: number
  served_by: string
}

/** Every error response */
export interface ErrorResponse {
  error: string
}
