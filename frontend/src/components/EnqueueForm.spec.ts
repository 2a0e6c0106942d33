import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import EnqueueForm from './EnqueueForm.vue'

describe('EnqueueForm', () => {
  const props = { busy: false, error: null, last: null }

  it('submits the typed name from a real form and suggests the next one', async () => {
    const w = mount(EnqueueForm, { props })
    const input = w.get<HTMLInputElement>('[data-testid="job-name"]')
    expect(input.element.value).toBe('job-1')
    await input.setValue('  thumbnail  ')
    await w.get('form').trigger('submit')
    expect(w.emitted('enqueue')).toEqual([['thumbnail']])
    expect(input.element.value).toBe('job-2')
  })

  it('has a labelled input and a submit button', () => {
    const w = mount(EnqueueForm, { props })
    expect(w.get('label').text()).toContain('Job name')
    expect(w.find('label input').exists()).toBe(true)
    expect(w.get('[data-testid="enqueue"]').attributes('type')).toBe('submit')
  })

  it('enqueues a deliberately failing job', async () => {
    const w = mount(EnqueueForm, { props })
    await w.get('[data-testid="enqueue-fail"]').trigger('click')
    expect(w.emitted('enqueue')?.[0]?.[0]).toMatch(/^fail-/)
  })

  it('disables the buttons while busy or when the name is blank', async () => {
    const w = mount(EnqueueForm, { props: { ...props, busy: true } })
    expect(w.get('[data-testid="enqueue"]').attributes('disabled')).toBeDefined()
    await w.setProps({ busy: false })
    await w.get('[data-testid="job-name"]').setValue('  ')
    expect(w.get('[data-testid="enqueue"]').attributes('disabled')).toBeDefined()
  })

  it('shows which replica accepted the last job, or why it failed', async () => {
    const w = mount(EnqueueForm, {
      props: { ...props, last: { enqueued: 'job-9', id: '9', queue_length: 4, served_by: 'app-2' } },
    })
    expect(w.get('[data-testid="enqueue-result"]').text()).toContain('job-9 accepted by app-2')
    await w.setProps({ error: 'redis unavailable (HTTP 503)' })
    expect(w.get('[role="alert"]').text()).toBe('Enqueue failed: redis unavailable (HTTP 503)')
  })
})
