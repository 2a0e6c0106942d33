import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import type { ServedSample } from '@/composables/useSession'

import RotationChart from './RotationChart.vue'

const samples = (names: string[]): ServedSample[] => names.map((servedBy, i) => ({ seq: i + 1, servedBy, at: 0 }))

describe('RotationChart', () => {
  const history = samples(['app-1', 'app-2', 'app-3', 'app-1'])
  const shares = [
    { name: 'app-1', count: 2, share: 0.5 },
    { name: 'app-2', count: 1, share: 0.25 },
    { name: 'app-3', count: 1, share: 0.25 },
  ]

  it('draws one lane per replica, including fleet replicas that served nothing', () => {
    const w = mount(RotationChart, { props: { history, shares, size: 6, lanes: ['app-1', 'app-4'] } })
    expect(w.findAll('[data-lane]').map((l) => l.attributes('data-lane'))).toEqual(['app-1', 'app-2', 'app-3', 'app-4'])
    expect(w.get('[data-lane="app-4"] .pct').text()).toBe('0%')
    expect(w.get('[data-lane="app-1"] .pct').text()).toBe('50%')
  })

  it('puts each request in its replica lane, oldest left and newest right', () => {
    const w = mount(RotationChart, { props: { history, shares, size: 6, lanes: [] } })
    const hits = (lane: string) =>
      w.findAll(`[data-lane="${lane}"] .cell`).map((c) => (c.classes().includes('hit') ? 'x' : '.'))
    expect(hits('app-1').join('')).toBe('..x..x')
    expect(hits('app-2').join('')).toBe('...x..')
    expect(hits('app-3').join('')).toBe('....x.')
    expect(w.findAll('.cell.newest')).toHaveLength(1)
    expect(w.find('[data-lane="app-1"] .cell.newest').exists()).toBe(true)
  })

  it('colours the strip by replica and summarises the shares for screen readers', () => {
    const w = mount(RotationChart, { props: { history, shares, size: 6, lanes: [] } })
    const strip = w.findAll('[data-testid="strip"] .stripe')
    expect(strip).toHaveLength(6)
    expect(strip.map((s) => s.attributes('data-served-by') ?? '-')).toEqual([
      '-',
      '-',
      'app-1',
      'app-2',
      'app-3',
      'app-1',
    ])
    expect(w.get('[data-testid="rotation-summary"]').text()).toBe(
      'Your last 4 requests were served by: app-1 50%, app-2 25%, app-3 25%.',
    )
  })

  it('only keeps the window size', () => {
    const long = samples(Array.from({ length: 10 }, (_, i) => `app-${(i % 2) + 1}`))
    const w = mount(RotationChart, { props: { history: long, shares: [], size: 4, lanes: [] } })
    expect(w.findAll('[data-testid="strip"] .stripe')).toHaveLength(4)
    expect(w.findAll('[data-testid="strip"] .stripe.empty')).toHaveLength(0)
  })
})
