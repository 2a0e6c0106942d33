import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import SessionStats from './SessionStats.vue'

describe('SessionStats', () => {
  it('shows the counters and the session id', () => {
    const w = mount(SessionStats, {
      props: {
        session: {
          served_by: 'a',
          session_id: 'abc-123',
          session_count: 1234,
          global_count: 98765,
          new_session: false,
        },
        hops: 5,
        replicas: 3,
      },
    })
    expect(w.get('[data-testid="session-count"]').text()).toBe('1,234')
    expect(w.get('[data-testid="global-count"]').text()).toBe('98,765')
    expect(w.get('[data-testid="hops"]').text()).toBe('5')
    expect(w.text()).toContain('across 3 replicas')
    expect(w.get('[data-testid="session-id"]').text()).toBe('abc-123')
    expect(w.find('[data-testid="new-session"]').exists()).toBe(false)
  })

  it('marks a new session and shows dashes before data', async () => {
    const w = mount(SessionStats, { props: { session: null, hops: 0, replicas: 1 } })
    expect(w.get('[data-testid="session-count"]').text()).toBe('—')
    expect(w.text()).toContain('across 1 replica,')
    await w.setProps({
      session: { served_by: 'a', session_id: 's', session_count: 1, global_count: 1, new_session: true },
    })
    expect(w.find('[data-testid="new-session"]').exists()).toBe(true)
  })
})
