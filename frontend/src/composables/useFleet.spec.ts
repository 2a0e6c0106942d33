import { describe, expect, it, vi } from 'vitest'

import type { Instance } from '@/api/types'
import { composableScope, jsonResponse, mockFetch } from '@/test/helpers'

import { useFleet } from './useFleet'

const inst = (name: string, role: Instance['role']): Instance => ({
  name,
  role,
  started_at: 1,
  last_seen: 2,
  handled: 3,
  draining: false,
})

describe('useFleet', () => {
  const scope = composableScope()

  it('splits replicas from workers, each sorted by name with numbers in order', async () => {
    mockFetch({
      'GET /api/instances': () =>
        jsonResponse({
          served_by: 'app-1',
          instances: [inst('app-10', 'app'), inst('worker-1', 'worker'), inst('app-2', 'app'), inst('app-1', 'app')],
        }),
    })
    const f = scope().run(() => useFleet({ interval: 3000 }))!
    expect(f.replicas.value).toEqual([])
    await vi.advanceTimersByTimeAsync(0)
    expect(f.replicas.value.map((i) => i.name)).toEqual(['app-1', 'app-2', 'app-10'])
    expect(f.workers.value.map((i) => i.name)).toEqual(['worker-1'])
  })
})
