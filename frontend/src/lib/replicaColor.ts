// A stable colour for every replica name: the same name always gets the same
// hue, on every page and every reload, with no shared state.
//
// Names that end in a number (app-1, app-2, scaleout-app-3, worker-1) are spread
// around the colour wheel by the golden angle, so neighbours in a fleet never
// look alike; any other name (e.g. a container hostname) is hashed.

const GOLDEN_ANGLE = 137.508

/** 32-bit FNV-1a over UTF-16 code units. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** murmur3's finaliser: turns near-identical inputs into far-apart outputs. */
function avalanche(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Hue in degrees, an integer in [0, 360). */
export function replicaHue(name: string): number {
  const m = /^(.*?)(\d{1,6})$/.exec(name)
  if (m !== null) {
    const base = avalanche(fnv1a(m[1] ?? '')) % 360
    return Math.round(base + Number(m[2]) * GOLDEN_ANGLE) % 360
  }
  return avalanche(fnv1a(name)) % 360
}

/** Inline style that sets the `--hue` custom property the stylesheet colours with. */
export function hueStyle(name: string): Record<string, string> {
  return { '--hue': String(replicaHue(name)) }
}
