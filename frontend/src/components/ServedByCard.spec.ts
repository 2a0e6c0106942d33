import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import ServedByCard from './ServedByCard.vue'

describe('ServedByCard', () => {
  it('shows who answered, lights that replica and shows the round trip', () => {
    const w = mount(ServedByCard, {
      props: { servedBy: 'app-3', answered: 12, latency: 7, replicas: ['app-1', 'app-2', 'app-3'] },
    })
    expect(w.get('[data-testid="served-by"]').text()).toBe('app-3')
    expect(w.get('[data-testid="answered"]').text()).toBe('#12')
    expect(w.text()).toContain('7 ms')
    const lit = w.findAll('.pill.lit')
    expect(lit).toHaveLength(1)
    expect(lit[0]?.text()).toBe('app-3')
    expect(lit[0]?.attributes('aria-current')).toBe('true')
  })

  it('waits calmly before the first answer', () => {
    const w = mount(ServedByCard, { props: { servedBy: null, answered: 0, latency: null, replicas: [] } })
    expect(w.find('[data-testid="served-by"]').exists()).toBe(false)
    expect(w.get('[data-testid="served-by-empty"]').text()).toContain('waiting')
    expect(w.find('.pills').exists()).toBe(false)
  })

  it('swaps the placeholder for the first answer cleanly', async () => {
    const w = mount(ServedByCard, { props: { servedBy: null, answered: 0, latency: null, replicas: [] } })
    await w.setProps({ servedBy: 'app-1', answered: 1, latency: 3 })
    expect(w.find('[data-testid="served-by-empty"]').exists()).toBe(false)
    const name = w.get('[data-testid="served-by"]')
    expect(name.text()).toBe('app-1')
    expect(name.classes()).toEqual(['pop'])
  })
})
