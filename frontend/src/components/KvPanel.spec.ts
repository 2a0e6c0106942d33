import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import type { KvEntry } from '@/composables/useKv'

import KvPanel from './KvPanel.vue'

const entry = (over: Partial<KvEntry>): KvEntry => ({
  seq: 1,
  op: 'set',
  key: 'color',
  value: 'blue',
  servedBy: 'app-1',
  error: null,
  at: 0,
  ...over,
})

describe('KvPanel', () => {
  it('sets on submit and gets on the Get button', async () => {
    const w = mount(KvPanel, { props: { log: [], busy: false } })
    await w.get('[data-testid="kv-key"]').setValue(' size ')
    await w.get('[data-testid="kv-value"]').setValue('XL')
    await w.get('form').trigger('submit')
    await w.get('[data-testid="kv-get"]').trigger('click')
    expect(w.emitted('set')).toEqual([['size', 'XL']])
    expect(w.emitted('get')).toEqual([['size']])
  })

  it('shows which replica answered each operation, and failures', () => {
    const w = mount(KvPanel, {
      props: {
        log: [
          entry({ seq: 3, op: 'get', key: 'nope', value: null, servedBy: null, error: 'key not found' }),
          entry({ seq: 2, op: 'get', servedBy: 'app-3' }),
          entry({ seq: 1 }),
        ],
        busy: false,
      },
    })
    const items = w.findAll('[data-testid="kv-log"] li')
    expect(items).toHaveLength(3)
    expect(items[0]?.text()).toContain('key not found')
    expect(items[0]?.classes()).toContain('failed')
    expect(items[1]?.attributes('data-served-by')).toBe('app-3')
    expect(items[1]?.text()).toMatch(/get\s*color = blue\s*answered by\s*app-3/)
    expect(items[2]?.attributes('data-op')).toBe('set')
  })

  it('blocks the buttons while a request runs', () => {
    const w = mount(KvPanel, { props: { log: [], busy: true } })
    expect(w.get('[data-testid="kv-set"]').attributes('disabled')).toBeDefined()
    expect(w.get('[data-testid="kv-get"]').attributes('disabled')).toBeDefined()
  })
})
