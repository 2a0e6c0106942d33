import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import { sentinelTier as sentinel, standaloneTier as standalone } from '@/test/helpers'

import RedisPanel from './RedisPanel.vue'

const NOW = 1_700_000_000_000

describe('RedisPanel', () => {
  it('shows the primary, its replicas with their lag, the Sentinels and the WAIT setting', () => {
    const w = mount(RedisPanel, { props: { tier: sentinel, unavailable: false, now: NOW } })
    expect(w.get('[data-testid="redis"]').attributes('data-view')).toBe('sentinel')
    expect(w.get('[data-testid="redis-primary"]').text()).toBe('127.0.0.1:7001')
    expect(w.text()).toContain('mymaster')
    expect(w.text()).toContain('reachable')
    expect(w.text()).toContain('role master')
    expect(w.text()).toContain('as app-2 sees it')
    const rows = w.findAll('[data-testid="redis-replicas"] li')
    expect(rows.map((r) => r.attributes('data-addr'))).toEqual(['127.0.0.1:7002', '127.0.0.1:7003'])
    expect(rows[0]?.text()).toContain('1,234 B behind · 0 s since ack')
    expect(rows[1]?.text()).toContain('wait_bgsave')
    const sentinels = w.findAll('[data-testid="redis-sentinels"] li')
    expect(sentinels.map((s) => s.attributes('data-up'))).toEqual(['true', 'true', 'false'])
    expect(w.text()).toContain('2/3 up')
    expect(w.get('[data-testid="redis-last-failover"]').text()).toBe('none seen')
    expect(w.get('[data-testid="redis-wait"]').text()).toBe('each write waits for 1 replica')
  })

  it('during a failover: no primary, unreachable; afterwards the new primary and "x s ago"', async () => {
    const w = mount(RedisPanel, {
      props: {
        tier: { ...sentinel, primary: null, primary_reachable: false, on_primary: false, replicas: [] },
        unavailable: false,
        now: NOW,
      },
    })
    expect(w.get('[data-testid="redis-primary"]').text()).toBe('none known')
    expect(w.text()).toContain('unreachable')
    expect(w.text()).toContain('role not confirmed')
    expect(w.text()).toContain('Primary unreachable.')

    await w.setProps({ tier: { ...sentinel, primary: '127.0.0.1:7002', last_failover_ms: NOW - 12_000 } })
    expect(w.get('[data-testid="redis-primary"]').text()).toBe('127.0.0.1:7002')
    expect(w.get('[data-testid="redis-last-failover"]').text()).toBe('12 s ago')
    await w.setProps({ tier: { ...sentinel, wait_replicas: 0 } })
    expect(w.get('[data-testid="redis-wait"]').text()).toBe('off')
  })

  it('is one compact line for a standalone Redis', () => {
    const w = mount(RedisPanel, { props: { tier: standalone, unavailable: false, now: NOW } })
    const line = w.get('[data-testid="redis-standalone"]')
    expect(line.text()).toBe('standalone Redis at 127.0.0.1:6379 reachable')
    expect(line.get('.badge').text()).toBe('reachable')
    expect(w.find('[data-testid="redis-sentinels"]').exists()).toBe(false)
  })

  it('says quietly when the API has no /redis, and shows loading before the first answer', async () => {
    const w = mount(RedisPanel, { props: { tier: null, unavailable: false, now: NOW } })
    expect(w.get('[data-testid="redis"]').attributes('data-view')).toBe('loading')
    expect(w.text()).toContain('Loading…')
    await w.setProps({ unavailable: true })
    expect(w.get('[data-testid="redis"]').attributes('data-view')).toBe('unavailable')
    expect(w.get('[data-testid="redis-unavailable"]').text()).toContain('Redis tier: not available')
  })
})
