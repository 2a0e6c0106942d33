import { describe, expect, it } from 'vitest'

import { jsonResponse, mockFetch } from '@/test/helpers'

import { useKv } from './useKv'

describe('useKv', () => {
  it('logs each set and get with the replica that answered, newest first', async () => {
    mockFetch({
      'PUT /api/kv/color': (init) => jsonResponse({ key: 'color', value: String(init?.body), served_by: 'app-1' }),
      'GET /api/kv/color': () => jsonResponse({ key: 'color', value: 'blue', served_by: 'app-2' }),
    })
    const kv = useKv()
    const set = await kv.set('color', 'blue')
    expect(set).toMatchObject({ op: 'set', key: 'color', value: 'blue', servedBy: 'app-1', error: null })
    await kv.get('color')
    expect(kv.log.value.map((e) => `${e.op}:${e.value}@${e.servedBy}`)).toEqual(['get:blue@app-2', 'set:blue@app-1'])
    expect(kv.busy.value).toBe(false)
  })

  it('shows a missing key as "key not found"', async () => {
    mockFetch({ 'GET /api/kv/nope': () => jsonResponse({ error: 'key not found' }, 404) })
    const kv = useKv()
    const e = await kv.get('nope')
    expect(e).toMatchObject({ op: 'get', key: 'nope', value: null, servedBy: null, error: 'key not found' })
  })

  it('explains a key the proxy refuses instead of a bare HTTP 400', async () => {
    mockFetch({ 'PUT /api/kv/a%2Fb': () => new Response('', { status: 400 }) })
    const kv = useKv()
    const e = await kv.set('a/b', 'v')
    expect(e.error).toBe('the proxy refuses keys containing / or \\ in a URL path; choose another key (HTTP 400)')
  })

  it('keeps only the last few entries', async () => {
    mockFetch({ 'GET /api/kv/k': () => jsonResponse({ key: 'k', value: 'v', served_by: 'app-1' }) })
    const kv = useKv(3)
    for (let i = 0; i < 5; i++) await kv.get('k')
    expect(kv.log.value.map((e) => e.seq)).toEqual([5, 4, 3])
  })
})
