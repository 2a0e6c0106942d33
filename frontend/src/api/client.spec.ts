import { describe, expect, it, vi } from 'vitest'

import { jsonResponse, mockFetch } from '@/test/helpers'

import { ApiError, KEY_REFUSED_BY_PROXY, api, describeError, timeoutError, timeoutSignal } from './client'

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

  it('sets and gets keys under /api/kv/{key}, escaping the key once', async () => {
    // encodeURIComponent('a b&c+d%é'): what the API decodes back, exactly once.
    const fetch = mockFetch({
      'PUT /api/kv/a%20b%26c%2Bd%25%C3%A9': (init) =>
        jsonResponse({ key: 'a b&c+d%é', value: String(init?.body), served_by: 'app-1' }),
      'GET /api/kv/a%20b%26c%2Bd%25%C3%A9': () => jsonResponse({ key: 'a b&c+d%é', value: 'v', served_by: 'app-3' }),
    })
    expect((await api.setKey('a b&c+d%é', 'v')).value).toBe('v')
    expect((await api.getKey('a b&c+d%é')).served_by).toBe('app-3')
    expect(fetch).toHaveBeenCalledTimes(2)
  })

  it('says so in words when the proxy refuses a key with / or \\', async () => {
    // What the real stack answers: Traefik's empty 400, not the API's JSON.
    mockFetch({
      'GET /api/kv/a%2Fb': () => new Response('', { status: 400 }),
      'PUT /api/kv/a%5Cb': () => new Response('', { status: 400 }),
      'GET /api/kv/%20': () => jsonResponse({ error: 'missing key' }, 400),
    })
    const refused = new ApiError(400, KEY_REFUSED_BY_PROXY)
    await expect(api.getKey('a/b')).rejects.toEqual(refused)
    await expect(api.setKey('a\\b', 'v')).rejects.toEqual(refused)
    expect(describeError(refused)).toBe(`${KEY_REFUSED_BY_PROXY} (HTTP 400)`)
    // The API's own 400 keeps its sentence.
    await expect(api.getKey(' ')).rejects.toEqual(new ApiError(400, 'missing key'))
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
