import { describe, expect, it, vi } from 'vitest'

import type { Job, JobsResponse } from '@/api/types'
import { composableScope, jsonResponse, mockFetch } from '@/test/helpers'

import { useJobs } from './useJobs'

const job = (id: string, status: Job['status'], enqueued_at: number, worker: string | null = null): Job => ({
  id,
  name: `job-${id}`,
  status,
  attempts: status === 'queued' ? 0 : 1,
  worker,
  enqueued_at,
  updated_at: enqueued_at,
  last_error: null,
})

const page = (jobs: Job[]): JobsResponse => ({
  jobs,
  queue_length: jobs.filter((j) => j.status === 'queued').length,
  processing_length: jobs.filter((j) => j.status === 'processing').length,
  delayed_length: 0,
  dead_length: 0,
  served_by: 'app-1',
})

describe('useJobs', () => {
  const scope = composableScope()

  it('shows an enqueued job at once, then follows its status from the server', async () => {
    let server: Job[] = [job('old', 'done', 1, 'worker-1')]
    const fetch = mockFetch({
      'GET /api/jobs': () => jsonResponse(page(server)),
      'POST /api/jobs': () =>
        jsonResponse({ enqueued: 'job-new', id: 'new', queue_length: 1, served_by: 'app-3' }, 202),
    })
    const j = scope().run(() => useJobs({ idleInterval: 5000, busyInterval: 1000 }))!
    await vi.advanceTimersByTimeAsync(0)
    expect(j.jobs.value.map((x) => x.id)).toEqual(['old'])

    const res = await j.enqueue('  job-new  ')
    expect(res?.served_by).toBe('app-3')
    expect(JSON.parse(String(fetch.mock.calls.find((c) => c[1]?.method === 'POST')?.[1]?.body))).toEqual({
      name: 'job-new',
    })
    expect(j.mine.value.has('new')).toBe(true)
    expect(j.jobs.value[0]).toMatchObject({ id: 'new', status: 'queued', worker: null })

    server = [job('new', 'processing', Date.now(), 'worker-2'), ...server]
    await vi.advanceTimersByTimeAsync(1000)
    expect(j.jobs.value[0]).toMatchObject({ id: 'new', status: 'processing', worker: 'worker-2' })
    expect(j.jobs.value).toHaveLength(2)
  })

  it('polls fast while jobs move and slowly once they are all finished', async () => {
    let server: Job[] = [job('a', 'queued', 1)]
    const fetch = mockFetch({ 'GET /api/jobs': () => jsonResponse(page(server)) })
    scope().run(() => useJobs({ idleInterval: 5000, busyInterval: 1000 }))
    await vi.advanceTimersByTimeAsync(0)
    await vi.advanceTimersByTimeAsync(1000)
    expect(fetch).toHaveBeenCalledTimes(2)
    server = [job('a', 'done', 1, 'worker-1')]
    await vi.advanceTimersByTimeAsync(1000)
    expect(fetch).toHaveBeenCalledTimes(3)
    await vi.advanceTimersByTimeAsync(4000)
    expect(fetch).toHaveBeenCalledTimes(3)
    await vi.advanceTimersByTimeAsync(1000)
    expect(fetch).toHaveBeenCalledTimes(4)
  })

  it('reports a failed enqueue and ignores blank names', async () => {
    mockFetch({
      'GET /api/jobs': () => jsonResponse(page([])),
      'POST /api/jobs': () => jsonResponse({ error: 'redis unavailable' }, 503),
    })
    const j = scope().run(() => useJobs({ idleInterval: 5000 }))!
    expect(await j.enqueue('   ')).toBeNull()
    expect(j.enqueueError.value).toBeNull()
    expect(await j.enqueue('x')).toBeNull()
    expect(j.enqueueError.value).toBe('redis unavailable (HTTP 503)')
    expect(j.enqueuing.value).toBe(false)
  })

  it('lists the newest jobs first, up to the limit', async () => {
    mockFetch({ 'GET /api/jobs': () => jsonResponse(page([1, 5, 3, 4, 2].map((n) => job(String(n), 'done', n)))) })
    const j = scope().run(() => useJobs({ idleInterval: 5000, limit: 3 }))!
    await vi.advanceTimersByTimeAsync(0)
    expect(j.jobs.value.map((x) => x.id)).toEqual(['5', '4', '3'])
    expect(j.counts.value).toEqual({ queued: 0, processing: 0, dead: 0 })
  })
})
