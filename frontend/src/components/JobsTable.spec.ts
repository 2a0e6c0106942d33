import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import type { Job } from '@/api/types'

import JobsTable from './JobsTable.vue'

const NOW = 1_700_000_000_000

const job = (id: string, status: Job['status'], worker: string | null, last_error: string | null = null): Job => ({
  id,
  name: `name-${id}`,
  status,
  attempts: status === 'queued' ? 0 : 1,
  worker,
  enqueued_at: NOW - 10_000,
  updated_at: NOW - 3000,
  last_error,
})

describe('JobsTable', () => {
  it('shows each job with its live status and the worker that took it', () => {
    const w = mount(JobsTable, {
      props: {
        jobs: [job('1', 'queued', null), job('2', 'processing', 'worker-1'), job('3', 'dead', 'worker-2', 'boom')],
        mine: new Set(['2']),
        now: NOW,
      },
    })
    const rows = w.findAll('tbody tr')
    expect(rows.map((r) => r.attributes('data-status'))).toEqual(['queued', 'processing', 'dead'])
    expect(rows[0]?.text()).toContain('—')
    expect(rows[1]?.get('[data-replica]').text()).toBe('worker-1')
    expect(rows[1]?.classes()).toContain('mine')
    expect(rows[0]?.classes()).not.toContain('mine')
    expect(rows[2]?.get('.err').text()).toBe('boom')
    expect(rows[2]?.text()).toContain('3 s ago')
  })

  it('invites you to enqueue when empty', () => {
    const w = mount(JobsTable, { props: { jobs: [], mine: new Set<string>(), now: NOW } })
    expect(w.text()).toContain('No jobs yet')
  })
})
