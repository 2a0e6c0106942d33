import { describe, expect, it } from 'vitest'

import { fnv1a, hueStyle, replicaHue } from './replicaColor'

/** Smallest distance between two hues on the colour wheel. */
const gap = (a: number, b: number): number => Math.min(Math.abs(a - b), 360 - Math.abs(a - b))

describe('replicaHue', () => {
  it('is stable for a name', () => {
    expect(replicaHue('app-2')).toBe(replicaHue('app-2'))
    expect(replicaHue('3f2a9c1b7d0e')).toBe(replicaHue('3f2a9c1b7d0e'))
  })

  it('is an integer hue in [0, 360)', () => {
    for (const name of ['', 'a', 'app-1', 'worker-7', 'x'.repeat(300), 'scaleout-app-999999', 'ünïcødé']) {
      const h = replicaHue(name)
      expect(Number.isInteger(h)).toBe(true)
      expect(h).toBeGreaterThanOrEqual(0)
      expect(h).toBeLessThan(360)
    }
  })

  it('keeps numbered neighbours far apart on the wheel', () => {
    for (const prefix of ['app-', 'scaleout-app-', 'worker-']) {
      const hues = [1, 2, 3, 4, 5].map((n) => replicaHue(`${prefix}${n}`))
      for (let i = 0; i < hues.length; i++) {
        for (let j = i + 1; j < hues.length; j++) {
          expect(gap(hues[i] ?? 0, hues[j] ?? 0)).toBeGreaterThanOrEqual(30)
        }
      }
      // 1, 2, 3 (the usual demo) are very far apart.
      expect(gap(hues[0] ?? 0, hues[1] ?? 0)).toBeGreaterThan(80)
      expect(gap(hues[1] ?? 0, hues[2] ?? 0)).toBeGreaterThan(80)
      expect(gap(hues[0] ?? 0, hues[2] ?? 0)).toBeGreaterThan(80)
    }
  })

  it('gives different names different colours', () => {
    expect(replicaHue('alpha')).not.toBe(replicaHue('beta'))
  })
})

describe('fnv1a', () => {
  it('matches the reference values', () => {
    expect(fnv1a('')).toBe(0x811c9dc5)
    expect(fnv1a('a')).toBe(0xe40c292c)
    expect(fnv1a('foobar')).toBe(0xbf9cf968)
  })
})

describe('hueStyle', () => {
  it('sets the --hue custom property', () => {
    expect(hueStyle('app-1')).toEqual({ '--hue': String(replicaHue('app-1')) })
  })
})
