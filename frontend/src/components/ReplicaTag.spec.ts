import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import { replicaHue } from '@/lib/replicaColor'

import ReplicaTag from './ReplicaTag.vue'

describe('ReplicaTag', () => {
  it('shows the name in the colour of its hue', () => {
    const w = mount(ReplicaTag, { props: { name: 'app-2' } })
    expect(w.text()).toBe('app-2')
    expect(w.attributes('data-replica')).toBe('app-2')
    expect(w.attributes('style')).toContain(`--hue: ${replicaHue('app-2')}`)
    expect(w.classes()).not.toContain('solid')
  })

  it('can be a solid pill', () => {
    expect(mount(ReplicaTag, { props: { name: 'x', solid: true } }).classes()).toContain('solid')
  })
})
