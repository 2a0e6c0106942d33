// Small hand-written decoders: the page never trusts `response.json()` (which is
// `any`) and a response that drifts from the contract fails loudly and clearly.
import {
  JOB_STATUSES,
  type EnqueueResponse,
  type Instance,
  type InstancesResponse,
  type Job,
  type JobStatus,
  type JobsResponse,
  type KvResponse,
  type SessionResponse,
} from './types'

export class DecodeError extends Error {
  override name = 'DecodeError'
}

type Obj = Record<string, unknown>

function obj(u: unknown, what: string): Obj {
  if (typeof u !== 'object' || u === null || Array.isArray(u)) {
    throw new DecodeError(`${what}: expected an object`)
  }
  return u as Obj
}

function str(o: Obj, key: string): string {
  const v = o[key]
  if (typeof v !== 'string') throw new DecodeError(`field "${key}" should be a string`)
  return v
}

function num(o: Obj, key: string): number {
  const v = o[key]
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new DecodeError(`field "${key}" should be a number`)
  return v
}

function bool(o: Obj, key: string): boolean {
  const v = o[key]
  if (typeof v !== 'boolean') throw new DecodeError(`field "${key}" should be a boolean`)
  return v
}

function strOrNull(o: Obj, key: string): string | null {
  const v = o[key]
  if (v === null || v === undefined) return null
  if (typeof v !== 'string') throw new DecodeError(`field "${key}" should be a string or null`)
  return v
}

/** Job ids are strings; a numeric id is accepted and normalised. */
function id(o: Obj, key: string): string {
  const v = o[key]
  if (typeof v === 'string') return v
  if (typeof v === 'number' && Number.isFinite(v)) return String(v)
  throw new DecodeError(`field "${key}" should be an id`)
}

function arr(o: Obj, key: string): unknown[] {
  const v = o[key]
  if (!Array.isArray(v)) throw new DecodeError(`field "${key}" should be an array`)
  return v
}

function isJobStatus(v: unknown): v is JobStatus {
  return typeof v === 'string' && (JOB_STATUSES as readonly string[]).includes(v)
}

export function decodeSession(u: unknown): SessionResponse {
  const o = obj(u, 'session')
  return {
    served_by: str(o, 'served_by'),
    session_id: str(o, 'session_id'),
    session_count: num(o, 'session_count'),
    global_count: num(o, 'global_count'),
    new_session: bool(o, 'new_session'),
  }
}

export function decodeInstance(u: unknown): Instance {
  const o = obj(u, 'instance')
  const role = o.role
  if (role !== 'app' && role !== 'worker') throw new DecodeError('field "role" should be "app" or "worker"')
  return {
    name: str(o, 'name'),
    role,
    started_at: num(o, 'started_at'),
    last_seen: num(o, 'last_seen'),
    handled: num(o, 'handled'),
    draining: bool(o, 'draining'),
  }
}

export function decodeInstances(u: unknown): InstancesResponse {
  const o = obj(u, 'instances')
  return { served_by: str(o, 'served_by'), instances: arr(o, 'instances').map(decodeInstance) }
}

export function decodeKv(u: unknown): KvResponse {
  const o = obj(u, 'key/value')
  return { key: str(o, 'key'), value: str(o, 'value'), served_by: str(o, 'served_by') }
}

export function decodeEnqueue(u: unknown): EnqueueResponse {
  const o = obj(u, 'enqueue')
  return {
    enqueued: str(o, 'enqueued'),
    id: id(o, 'id'),
    queue_length: num(o, 'queue_length'),
    served_by: str(o, 'served_by'),
  }
}

export function decodeJob(u: unknown): Job {
  const o = obj(u, 'job')
  const status = o.status
  if (!isJobStatus(status)) throw new DecodeError('field "status" is not a known job status')
  return {
    id: id(o, 'id'),
    name: str(o, 'name'),
    status,
    attempts: num(o, 'attempts'),
    worker: strOrNull(o, 'worker'),
    enqueued_at: num(o, 'enqueued_at'),
    updated_at: num(o, 'updated_at'),
    last_error: strOrNull(o, 'last_error'),
  }
}

export function decodeJobs(u: unknown): JobsResponse {
  const o = obj(u, 'jobs')
  return {
    jobs: arr(o, 'jobs').map(decodeJob),
    queue_length: num(o, 'queue_length'),
    processing_length: num(o, 'processing_length'),
    dead_length: num(o, 'dead_length'),
    served_by: str(o, 'served_by'),
  }
}

/** The `error` sentence of an error body, if the body has one. */
export function errorMessage(u: unknown): string | null {
  if (typeof u !== 'object' || u === null) return null
  const v = (u as Obj).error
  return typeof v === 'string' && v.length > 0 ? v : null
}
