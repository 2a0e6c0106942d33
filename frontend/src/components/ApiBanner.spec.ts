import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import ApiBanner from './ApiBanner.vue'

describe('ApiBanner', () => {
  it('is absent while the API answers', () => {
    const w = mount(ApiBanner, { props: { error: null, lastSuccessAt: 1, now: 2 } })
    expect(w.find('[data-testid="api-banner"]').exists()).toBe(false)
  })

  it('says the API is unavailable and how old the data on screen is', () => {
    const w = mount(ApiBanner, { props: { error: 'timed out after 4 s', lastSuccessAt: 10_000, now: 22_000 } })
    const banner = w.get('[data-testid="api-banner"]')
    expect(banner.attributes('role')).toBe('alert')
    expect(banner.text()).toContain('API unavailable — retrying')
    expect(banner.text()).toContain('timed out after 4 s · showing data from 12 s ago')
  })

  it('says when there is no data yet', () => {
    const w = mount(ApiBanner, { props: { error: 'network error', lastSuccessAt: null, now: 0 } })
    expect(w.text()).toContain('no data yet')
  })
})
