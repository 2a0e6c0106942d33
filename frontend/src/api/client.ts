// The one place that talks HTTP. Same-origin `/api/*` (Traefik strips the prefix),
// always with credentials so the `sid` cookie flows, never cached.
import { decodeEnqueue, decodeInstances, decodeJobs, decodeKv, decodeSession, errorMessage } from './decode'
import type { EnqueueResponse, InstancesResponse, JobsResponse, KvResponse, SessionResponse } from './types'

export const API_BASE = '/api'

/** An HTTP error answered by the API (status and its `error` sentence). */
export class ApiError extends Error {
  override name = 'ApiError'
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT'
  body?: string
  contentType?: string
  signal?: AbortSignal
}

async function readJson(res: Response): Promise<unknown> {
  const text = await res.text()
  if (text.length === 0) return null
  try {
    return JSON.parse(text) as unknown
  } catch {
    return null
  }
}

export async function request<T>(path: string, decode: (u: unknown) => T, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  if (opts.contentType !== undefined) headers['Content-Type'] = opts.contentType
  const init: RequestInit = {
    method: opts.method ?? 'GET',
    credentials: 'include',
    cache: 'no-store',
    headers,
  }
  if (opts.body !== undefined) init.body = opts.body
  if (opts.signal !== undefined) init.signal = opts.signal
  const res = await fetch(`${API_BASE}${path}`, init)
  const body = await readJson(res)
  if (!res.ok) {
    throw new ApiError(res.status, errorMessage(body) ?? `HTTP ${res.status}`)
  }
  return decode(body)
}

export const api = {
  session: (signal?: AbortSignal): Promise<SessionResponse> => request('/', decodeSession, { signal }),

  instances: (signal?: AbortSignal): Promise<InstancesResponse> => request('/instances', decodeInstances, { signal }),

  jobs: (signal?: AbortSignal): Promise<JobsResponse> => request('/jobs', decodeJobs, { signal }),

  enqueue: (name: string, signal?: AbortSignal): Promise<EnqueueResponse> =>
    request('/jobs', decodeEnqueue, {
      method: 'POST',
      body: JSON.stringify({ name }),
      contentType: 'application/json',
      signal,
    }),

  setKey: (key: string, value: string, signal?: AbortSignal): Promise<KvResponse> =>
    kvRequest(key, {
      method: 'PUT',
      body: value,
      contentType: 'text/plain;charset=utf-8',
      signal,
    }),

  getKey: (key: string, signal?: AbortSignal): Promise<KvResponse> => kvRequest(key, { signal }),
}

/**
 * What the dashboard says when Traefik, not the API, refuses a key: it rejects an encoded
 * `/`, `\` or NUL in a path with an empty 400 (traefik/traefik.yml, `encodedCharacters`).
 */
export const KEY_REFUSED_BY_PROXY = 'the proxy refuses keys containing / or \\ in a URL path; choose another key'

/** `/kv/{key}` with the key escaped once; a 400 without the API's JSON sentence is Traefik's. */
async function kvRequest(key: string, opts: RequestOptions): Promise<KvResponse> {
  try {
    return await request(`/kv/${encodeURIComponent(key)}`, decodeKv, opts)
  } catch (err) {
    if (err instanceof ApiError && err.status === 400 && err.message === 'HTTP 400') {
      throw new ApiError(400, KEY_REFUSED_BY_PROXY)
    }
    throw err
  }
}

/** A short human sentence for anything a request can throw. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    const status = `HTTP ${err.status}`
    return err.message === status ? status : `${err.message} (${status})`
  }
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return err.message
    if (err.name === 'AbortError') return 'request aborted'
    if (err.name === 'DecodeError') return `unexpected response: ${err.message}`
    if (err instanceof TypeError) return 'network error'
    return err.message
  }
  return String(err)
}

/** An AbortSignal that fires after `ms`, with a readable TimeoutError reason. */
export function timeoutSignal(ms: number): { signal: AbortSignal; cancel: () => void } {
  const ctl = new AbortController()
  const timer = setTimeout(() => ctl.abort(timeoutError(ms)), ms)
  return { signal: ctl.signal, cancel: () => clearTimeout(timer) }
}

export function timeoutError(ms: number): Error {
  const err = new Error(`timed out after ${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s`)
  err.name = 'TimeoutError'
  return err
}
