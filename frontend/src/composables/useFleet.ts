import { computed, type MaybeRefOrGetter } from 'vue'

import { api } from '@/api/client'
import type { Instance } from '@/api/types'

import { usePoller } from './usePoller'

export interface FleetOptions {
  interval: MaybeRefOrGetter<number>
  /** Poll sooner than `interval` while failing, to clear the error quickly. */
  retryInterval?: MaybeRefOrGetter<number>
  enabled?: MaybeRefOrGetter<boolean>
}

const byName = (a: Instance, b: Instance): number => a.name.localeCompare(b.name, 'en', { numeric: true })

/** Polls `GET /api/instances`: the app replicas and the workers. */
export function useFleet(options: FleetOptions) {
  const poller = usePoller((signal) => api.instances(signal), options)
  const instances = computed(() => poller.data.value?.instances ?? [])
  const replicas = computed(() => instances.value.filter((i) => i.role === 'app').sort(byName))
  const workers = computed(() => instances.value.filter((i) => i.role === 'worker').sort(byName))
  return { ...poller, replicas, workers }
}

export type FleetState = ReturnType<typeof useFleet>
