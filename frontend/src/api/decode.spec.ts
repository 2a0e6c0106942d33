import { describe, expect, it } from 'vitest'

import {
  DecodeError,
  decodeEnqueue,
  decodeInstances,
  decodeJobs,
  decodeKv,
  decodeSession,
  errorMessage,
} from './decode'

const job = {
  id: 'j1',
  name: 'resize',
  status: 'processing',
  attempts: 1,
  worker: 'worker-1',
  enqueued_at: 1,
  updated_at: 2,
  last_error: null,
}

describe('decoders', () => {
  it('decodes GET /', () => {
    const body = { served_by: 'app-1', session_id: 's', session_count: 3, global_count: 9, new_session: false }
    expect(decodeSession(body)).toEqual(body)
  })

  it('ignores extra fields but rejects missing or mistyped ones', () => {
    const ok = { served_by: 'a', session_id: 's', session_count: 1, global_count: 1, new_session: true, extra: 1 }
    expect(decodeSession(ok)).not.toHaveProperty('extra')
    expect(() => decodeSession({ ...ok, session_count: '1' })).toThrow(DecodeError)
    expect(() => decodeSession({ ...ok, served_by: undefined })).toThrow(/served_by/)
    expect(() => decodeSession(null)).toThrow(DecodeError)
    expect(() => decodeSession([])).toThrow(DecodeError)
  })

  it('decodes GET /instances', () => {
    const inst = { name: 'app-1', role: 'app', started_at: 1, last_seen: 2, handled: 3, draining: false }
    expect(decodeInstances({ served_by: 'app-1', instances: [inst] }).instances).toEqual([inst])
    expect(() => decodeInstances({ served_by: 'x', instances: [{ ...inst, role: 'db' }] })).toThrow(/role/)
    expect(() => decodeInstances({ served_by: 'x', instances: {} })).toThrow(/instances/)
  })

  it('decodes GET /jobs', () => {
    const res = decodeJobs({
      jobs: [job, { ...job, id: 'j7', worker: null, status: 'dead', last_error: 'boom' }],
      queue_length: 1,
      processing_length: 1,
      delayed_length: 0,
      dead_length: 1,
      served_by: 'app-2',
    })
    expect(res.jobs[0]).toEqual(job)
    expect(res.jobs[1]?.id).toBe('j7')
    expect(res.jobs[1]?.worker).toBeNull()
    expect(() => decodeJobs({ ...res, jobs: [{ ...job, status: 'running' }] })).toThrow(/status/)
    expect(() => decodeJobs({ ...res, jobs: [{ ...job, id: 7 }] })).toThrow(/"id" should be a string/)
  })

  it('checks every field the Rust types declare, delayed_length too', () => {
    const body = { jobs: [], queue_length: 0, processing_length: 0, delayed_length: 2, dead_length: 0, served_by: 'a' }
    expect(decodeJobs(body).delayed_length).toBe(2)
    expect(() => decodeJobs({ ...body, delayed_length: undefined })).toThrow(/delayed_length/)
  })

  it('decodes the existing job an idempotent enqueue returns', () => {
    const res = decodeEnqueue({ enqueued: 'a', id: 'j1', queue_length: 0, served_by: 'app-1', job })
    expect(res.job).toEqual(job)
    expect(() => decodeEnqueue({ ...res, job: { ...job, attempts: 'x' } })).toThrow(/attempts/)
  })

  it('decodes enqueue and key/value answers', () => {
    expect(decodeEnqueue({ enqueued: 'a', id: 'x', queue_length: 2, served_by: 'app-1' }).id).toBe('x')
    expect(decodeKv({ key: 'k', value: 'v', served_by: 'app-3' })).toEqual({ key: 'k', value: 'v', served_by: 'app-3' })
    expect(() => decodeKv({ key: 'k', served_by: 'app-3' })).toThrow(/value/)
  })

  it('reads the error sentence of an error body', () => {
    expect(errorMessage({ error: 'key not found' })).toBe('key not found')
    expect(errorMessage({ error: '' })).toBeNull()
    expect(errorMessage('nope')).toBeNull()
    expect(errorMessage(null)).toBeNull()
  })
})
