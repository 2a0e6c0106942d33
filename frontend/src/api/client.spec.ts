import { describe, expect, it, vi } from 'vitest'

import { jsonResponse, mockFetch } from '@/test/helpers'

import { ApiError, api, describeError, timeoutError, timeoutSignal } from './client'

describe('api client', () => {
  it('calls /api/ with credentials and no caching', async () => {
    const fetch = mockFetch({
      'GET /api/': () =>
        jsonResponse({ served_by: 'app-1', session_id: 's', session_count: 1, global_count: 1, new_session: true }),
    })
    const res = await api.session()
    expect(res.served_by).toBe('app-1')
    const init = fetch.mock.calls[0]?.[1]
    expect(init?.credentials).toBe('include')
    expect(init?.cache).toBe('no-store')
  })

  it('enqueues with a JSON POST /api/jobs', async () => {
    const fetch = mockFetch({
      'POST /api/jobs': () => jsonResponse({ enqueued: 'a', id: '1', queue_length: 1, served_by: 'app-2' }, 202),
    })
    const res = await api.enqueue('a')
    expect(res).toEqual({ enqueued: 'a', id: '1', queue_length: 1, served_by: 'app-2' })
    const init = fetch.mock.calls[0]?.[1]
    expect(init?.body).toBe('{"name":"a"}')
    expect(init?.headers).toMatchObject({ 'Content-Type': 'application/json' })
  })

  it('sets and gets keys under /api/kv/{key}, escaping the key', async () => {
    const fetch = mockFetch({
      'PUT /api/kv/a%20b%2Fc': (init) => jsonResponse({ key: 'a b/c', value: String(init?.body), served_by: 'app-1' }),
      'GET /api/kv/a%20b%2Fc': () => jsonResponse({ key: 'a b/c', value: 'v', served_by: 'app-3' }),
    })
    expect((await api.setKey('a b/c', 'v')).value).toBe('v')
    expect((await api.getKey('a b/c')).served_by).toBe('app-3')
    expect(fetch).toHaveBeenCalledTimes(2)
  })

  it('turns error answers into ApiError with the server sentence', async () => {
    mockFetch({
      'GET /api/kv/missing': () => jsonResponse({ error: 'key not found' }, 404),
      'GET /api/jobs': () => new Response('<html>bad gateway</html>', { status: 502 }),
    })
    await expect(api.getKey('missing')).rejects.toEqual(new ApiError(404, 'key not found'))
    const err = await api.jobs().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(describeError(err)).toBe('HTTP 502')
  })

  it('describes failures in plain words', () => {
    expect(describeError(new ApiError(503, 'redis unavailable'))).toBe('redis unavailable (HTTP 503)')
    expect(describeError(new TypeError('Failed to fetch'))).toBe('network error')
    expect(describeError(timeoutError(4000))).toBe('timed out after 4 s')
    expect(describeError(timeoutError(1500))).toBe('timed out after 1.5 s')
    expect(describeError(new DOMException('x', 'AbortError'))).toBe('request aborted')
    expect(describeError('weird')).toBe('weird')
  })

  it('timeoutSignal aborts after the time, unless cancelled', () => {
    vi.useFakeTimers()
    try {
      const a = timeoutSignal(100)
      const b = timeoutSignal(100)
      b.cancel()
      vi.advanceTimersByTime(100)
      expect(a.signal.aborted).toBe(true)
      expect(describeError(a.signal.reason)).toBe('timed out after 0.1 s')
      expect(b.signal.aborted).toBe(false)
    } finally {
      vi.useRealTimers()
    }
  })
})
