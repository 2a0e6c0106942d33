import { flushPromises, mount, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import type { Job } from '@/api/types'
import { jsonResponse, mockFetch, session, setVisibility } from '@/test/helpers'

import App from './App.vue'

describe('App', () => {
  let wrapper: VueWrapper | undefined
  let apiDown: boolean
  let polls: number
  let jobs: Job[]

  beforeEach(() => {
    vi.useFakeTimers()
    setVisibility('visible')
    apiDown = false
    polls = 0
    jobs = []
    const down = () => jsonResponse({ error: 'redis unavailable' }, 503)
    mockFetch({
      'GET /api/': () => (apiDown ? down() : jsonResponse(session(`app-${(polls++ % 3) + 1}`, polls))),
      'GET /api/instances': () =>
        apiDown
          ? down()
          : jsonResponse({
              served_by: 'app-1',
              instances: ['app-1', 'app-2', 'app-3', 'worker-1'].map((name) => ({
                name,
                role: name.startsWith('app') ? 'app' : 'worker',
                started_at: Date.now() - 60_000,
                last_seen: Date.now(),
                handled: 5,
                draining: false,
              })),
            }),
      'GET /api/jobs': () =>
        apiDown
          ? down()
          : jsonResponse({
              jobs,
              queue_length: 0,
              processing_length: 0,
              delayed_length: 0,
              dead_length: 0,
              served_by: 'app-2',
            }),
      'POST /api/jobs': (init) => {
        const { name } = JSON.parse(String(init?.body)) as { name: string }
        jobs = [
          {
            id: 'j1',
            name,
            status: 'done',
            attempts: 1,
            worker: 'worker-1',
            enqueued_at: Date.now(),
            updated_at: Date.now(),
            last_error: null,
          },
        ]
        return jsonResponse({ enqueued: name, id: 'j1', queue_length: 1, served_by: 'app-3' }, 202)
      },
    })
  })

  afterEach(() => {
    wrapper?.unmount()
    wrapper = undefined
    vi.useRealTimers()
  })

  const servedBy = () => wrapper?.find('[data-testid="served-by"]').text()
  const sessionCount = () => wrapper?.find('[data-testid="session-count"]').text()

  it('updates served-by and the counters in place on every poll', async () => {
    wrapper = mount(App)
    await vi.advanceTimersByTimeAsync(0)
    await flushPromises()
    expect(servedBy()).toBe('app-1')
    expect(sessionCount()).toBe('1')
    expect(wrapper.findAll('[data-instance]')).toHaveLength(4)

    await vi.advanceTimersByTimeAsync(1500)
    expect(servedBy()).toBe('app-2')
    expect(sessionCount()).toBe('2')
    await vi.advanceTimersByTimeAsync(1500)
    expect(servedBy()).toBe('app-3')
    expect(wrapper.find('[data-testid="measured-interval"]').text()).toBe('1.50 s')
    expect(wrapper.find('[data-testid="live-state"]').text()).toBe('Live')
  })

  it('shows the banner while the API is down, keeps the last data, and recovers', async () => {
    wrapper = mount(App)
    await vi.advanceTimersByTimeAsync(0)
    await flushPromises()
    expect(wrapper.find('[data-testid="api-banner"]').exists()).toBe(false)

    apiDown = true
    await vi.advanceTimersByTimeAsync(1500)
    const banner = wrapper.get('[data-testid="api-banner"]')
    expect(banner.text()).toContain('API unavailable — retrying')
    expect(banner.text()).toContain('redis unavailable (HTTP 503)')
    expect(servedBy()).toBe('app-1')
    expect(sessionCount()).toBe('1')
    expect(wrapper.find('[data-testid="live-state"]').text()).toBe('Retrying')

    apiDown = false
    await vi.advanceTimersByTimeAsync(1500)
    expect(servedBy()).toBe('app-2')
    expect(wrapper.find('[data-testid="api-banner"]').exists()).toBe(false)
  })

  it('names the endpoint when only a secondary poll fails', async () => {
    vi.mocked(fetch).mockImplementation(async (input) => {
      const url = String(input)
      if (url === '/api/jobs') return jsonResponse({ error: 'no such route' }, 404)
      if (url === '/api/instances') return jsonResponse({ served_by: 'app-1', instances: [] })
      return jsonResponse(session('app-1', 1))
    })
    wrapper = mount(App)
    await vi.advanceTimersByTimeAsync(0)
    await flushPromises()
    expect(servedBy()).toBe('app-1')
    expect(wrapper.get('[data-testid="api-banner"]').text()).toContain('/api/jobs: no such route (HTTP 404)')
  })

  it('shows the Redis tier quietly as not available when the API has no /redis (404)', async () => {
    wrapper = mount(App)
    await vi.advanceTimersByTimeAsync(0)
    await flushPromises()
    expect(servedBy()).toBe('app-1')
    expect(wrapper.get('[data-testid="redis-unavailable"]').text()).toContain('Redis tier: not available')
    expect(wrapper.find('[data-testid="api-banner"]').exists()).toBe(false)
  })

  it('shows the Redis primary when the API has /redis', async () => {
    const fallback = vi.mocked(fetch).getMockImplementation()!
    vi.mocked(fetch).mockImplementation(async (input, init) => {
      if (String(input) !== '/api/redis') return fallback(input, init)
      return jsonResponse({
        served_by: 'app-1',
        mode: 'standalone',
        master_name: null,
        primary: '127.0.0.1:6379',
        primary_reachable: true,
        on_primary: true,
        replicas: [],
        sentinels: [],
        last_failover_ms: null,
        wait_replicas: 0,
      })
    })
    wrapper = mount(App)
    await vi.advanceTimersByTimeAsync(0)
    await flushPromises()
    expect(wrapper.get('[data-testid="redis-standalone"]').text()).toContain('standalone Redis at 127.0.0.1:6379')
  })

  it('stops polling while the tab is hidden', async () => {
    wrapper = mount(App)
    await vi.advanceTimersByTimeAsync(0)
    const before = vi.mocked(fetch).mock.calls.length
    setVisibility('hidden')
    await vi.advanceTimersByTimeAsync(30_000)
    expect(vi.mocked(fetch).mock.calls.length).toBe(before)
    expect(wrapper.find('[data-testid="live-state"]').text()).toBe('Paused (tab hidden)')
    setVisibility('visible')
    await vi.advanceTimersByTimeAsync(0)
    expect(vi.mocked(fetch).mock.calls.length).toBeGreaterThan(before)
  })

  it('pauses with the Pause button', async () => {
    wrapper = mount(App)
    await vi.advanceTimersByTimeAsync(0)
    await wrapper.get('[data-testid="pause"]').trigger('click')
    const before = vi.mocked(fetch).mock.calls.length
    await vi.advanceTimersByTimeAsync(10_000)
    expect(vi.mocked(fetch).mock.calls.length).toBe(before)
    expect(wrapper.find('[data-testid="live-state"]').text()).toBe('Paused')
  })

  it('enqueues a job and shows it with its worker', async () => {
    wrapper = mount(App)
    await vi.advanceTimersByTimeAsync(0)
    await wrapper.get('[data-testid="job-name"]').setValue('thumbnail')
    await wrapper.get('[data-testid="enqueue-form"]').trigger('submit')
    await vi.advanceTimersByTimeAsync(0)
    await flushPromises()
    const row = wrapper.get('tr[data-job-name="thumbnail"]')
    expect(row.attributes('data-status')).toBe('done')
    expect(row.text()).toContain('worker-1')
    expect(wrapper.get('[data-testid="enqueue-result"]').text()).toContain('accepted by app-3')
  })
})
