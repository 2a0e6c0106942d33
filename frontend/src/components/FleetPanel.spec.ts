import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import type { Instance } from '@/api/types'

import FleetPanel from './FleetPanel.vue'

const NOW = 1_700_000_000_000

const inst = (over: Partial<Instance> & Pick<Instance, 'name'>): Instance => ({
  role: 'app',
  started_at: NOW - 125_000,
  last_seen: NOW - 1000,
  handled: 10,
  draining: false,
  ...over,
})

describe('FleetPanel', () => {
  it('lists replicas and workers with their state and load, marking the one that served you', () => {
    const w = mount(FleetPanel, {
      props: {
        replicas: [
          inst({ name: 'app-1', handled: 40 }),
          inst({ name: 'app-2', draining: true }),
          inst({ name: 'app-3', last_seen: NOW - 60_000 }),
        ],
        workers: [inst({ name: 'worker-1', role: 'worker', handled: 7 })],
        current: 'app-1',
        now: NOW,
        loaded: true,
      },
    })
    const rows = w.findAll('[data-testid="fleet-replicas"] [data-instance]')
    expect(rows.map((r) => r.attributes('data-status'))).toEqual(['alive', 'draining', 'silent'])
    expect(rows[0]?.classes()).toContain('current')
    expect(rows[0]?.text()).toContain('you')
    expect(rows[0]?.text()).toContain('40 requests')
    expect(rows[0]?.text()).toContain('up 2 min')
    expect(rows[0]?.get('.fill').attributes('style')).toContain('width: 100%')
    expect(rows[1]?.get('.fill').attributes('style')).toContain('width: 25%')
    expect(w.get('[data-testid="fleet-workers"]').text()).toContain('7 jobs')
  })

  it('says "1 job", not "1 jobs"', () => {
    const w = mount(FleetPanel, {
      props: {
        replicas: [inst({ name: 'app-1', handled: 1 })],
        workers: [inst({ name: 'worker-1', role: 'worker', handled: 1 })],
        current: null,
        now: NOW,
        loaded: true,
      },
    })
    expect(w.text()).toContain('1 request')
    expect(w.text()).not.toContain('1 requests')
    expect(w.text()).toContain('1 job')
    expect(w.text()).not.toContain('1 jobs')
  })

  it('says so when a group is empty, and shows loading before the first answer', async () => {
    const w = mount(FleetPanel, { props: { replicas: [], workers: [], current: null, now: NOW, loaded: false } })
    expect(w.text()).toContain('Loading…')
    await w.setProps({ loaded: true })
    expect(w.text()).toContain('No worker registered.')
  })
})
