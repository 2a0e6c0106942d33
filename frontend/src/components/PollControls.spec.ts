import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import PollControls from './PollControls.vue'

describe('PollControls', () => {
  it('changes the interval through a labelled select and shows the measured one', async () => {
    const w = mount(PollControls, {
      props: { interval: 1500, paused: false, measured: 1532 },
    })
    const select = w.get<HTMLSelectElement>('select')
    expect(select.element.closest('label')?.textContent).toContain('Poll every')
    expect(select.element.value).toBe('1500')
    expect(w.get('[data-testid="measured-interval"]').text()).toBe('1.53 s')
    await select.setValue('3000')
    expect(w.emitted('update:interval')).toEqual([[3000]])
  })

  it('pauses and resumes with a toggle button', async () => {
    const w = mount(PollControls, { props: { interval: 1500, paused: false, measured: null } })
    const button = w.get('[data-testid="pause"]')
    expect(button.text()).toBe('Pause')
    expect(button.attributes('aria-pressed')).toBe('false')
    await button.trigger('click')
    expect(w.emitted('update:paused')).toEqual([[true]])
    await w.setProps({ paused: true })
    expect(button.text()).toBe('Resume')
    expect(w.get('[data-testid="measured-interval"]').text()).toBe('—')
  })
})
