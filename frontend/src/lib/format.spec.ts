import { describe, expect, it } from 'vitest'

import { formatAgo, formatCount, formatInterval, formatUptime, shortId } from './format'

describe('format', () => {
  it('formats intervals', () => {
    expect(formatInterval(null)).toBe('—')
    expect(formatInterval(850)).toBe('850 ms')
    expect(formatInterval(1500)).toBe('1.50 s')
    expect(formatInterval(1534.4)).toBe('1.53 s')
  })

  it('formats how long ago', () => {
    const now = 1_000_000
    expect(formatAgo(now, now)).toBe('just now')
    expect(formatAgo(now + 5000, now)).toBe('just now')
    expect(formatAgo(now - 12_000, now)).toBe('12 s ago')
    expect(formatAgo(now - 3 * 60_000, now)).toBe('3 min ago')
    expect(formatAgo(now - 2 * 3_600_000, now)).toBe('2 h ago')
  })

  it('formats uptimes', () => {
    expect(formatUptime(45_000)).toBe('45 s')
    expect(formatUptime(12 * 60_000)).toBe('12 min')
    expect(formatUptime(3 * 3_600_000 + 5 * 60_000)).toBe('3 h 5 min')
    expect(formatUptime(2 * 86_400_000 + 4 * 3_600_000)).toBe('2 d 4 h')
    expect(formatUptime(-5)).toBe('0 s')
  })

  it('formats counts and ids', () => {
    expect(formatCount(12345)).toBe('12,345')
    expect(formatCount(null)).toBe('—')
    expect(formatCount(undefined)).toBe('—')
    expect(shortId('3f2a9c1b-7d0e-4c1a-9b1e-1234567890ab')).toBe('3f2a9c1b…')
    expect(shortId('abc')).toBe('abc')
  })
})
