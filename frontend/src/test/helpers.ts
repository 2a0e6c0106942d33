// Shared helpers for the unit tests (not part of the app bundle).
import { afterEach, beforeEach, vi } from 'vitest'
import { effectScope, type EffectScope } from 'vue'

import type { RedisTier } from '@/api/types'

/** A promise you settle from the outside. */
export interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (reason: unknown) => void
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (reason: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Pretends the tab became hidden or visible, as the browser would. */
export function setVisibility(state: DocumentVisibilityState): void {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state })
  document.dispatchEvent(new Event('visibilitychange'))
}

export function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

export type Route = (init: RequestInit | undefined, url: string) => Response | Promise<Response>

/**
 * Installs a fake `fetch` that answers by "METHOD /path" (path as the page
 * requests it, e.g. "GET /api/jobs"); unknown routes answer 404.
 */
export function mockFetch(routes: Record<string, Route>) {
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
    const key = `${init?.method ?? 'GET'} ${url}`
    const route = routes[key]
    if (route === undefined) return jsonResponse({ error: `no route for ${key}` }, 404)
    return route(init, url)
  })
  vi.stubGlobal('fetch', fn)
  return fn
}

/** Lets pending promise callbacks run (with fake timers active). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

export const session = (served_by: string, session_count: number, session_id = 'sid-1') => ({
  served_by,
  session_id,
  session_count,
  global_count: session_count + 100,
  new_session: session_count === 1,
})

/**
 * For a composable's spec: fake timers, a visible tab, and a fresh effect scope per
 * test, stopped afterwards. Call inside `describe`; run the composable in `scope().run()`.
 */
export function composableScope(): () => EffectScope {
  let scope: EffectScope
  beforeEach(() => {
    vi.useFakeTimers()
    setVisibility('visible')
    scope = effectScope()
  })
  afterEach(() => {
    scope.stop()
    vi.useRealTimers()
  })
  return () => scope
}

/** `/redis` as app-2 sees `make local HA=1`: a primary, two replicas, a Sentinel down. */
export const sentinelTier: RedisTier = {
  served_by: 'app-2',
  mode: 'sentinel',
  master_name: 'mymaster',
  primary: '127.0.0.1:7001',
  primary_reachable: true,
  on_primary: true,
  replicas: [
    { addr: '127.0.0.1:7002', state: 'online', lag_bytes: 1234, lag_secs: 0 },
    { addr: '127.0.0.1:7003', state: 'wait_bgsave', lag_bytes: 0, lag_secs: 3 },
  ],
  sentinels: [
    { addr: '127.0.0.1:26379', up: true },
    { addr: '127.0.0.1:26380', up: true },
    { addr: '127.0.0.1:26381', up: false },
  ],
  last_failover_ms: null,
  wait_replicas: 1,
}

/** `/redis` on a standalone Redis: no Sentinels, no replicas, no WAIT. */
export const standaloneTier: RedisTier = {
  ...sentinelTier,
  mode: 'standalone',
  master_name: null,
  primary: '127.0.0.1:6379',
  replicas: [],
  sentinels: [],
  wait_replicas: 0,
}
