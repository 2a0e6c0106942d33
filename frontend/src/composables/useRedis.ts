import { computed, type MaybeRefOrGetter } from 'vue'

import { fetchRedis } from '@/api/redis'

import { usePoller } from './usePoller'

export interface RedisOptions {
  interval: MaybeRefOrGetter<number>
  /** Poll sooner than `interval` while failing, to clear the error quickly. */
  retryInterval?: MaybeRefOrGetter<number>
  enabled?: MaybeRefOrGetter<boolean>
}

/**
 * Polls `GET /api/redis`: the primary, its replicas, the Sentinels. A 404 (an API
 * without the route) is `unavailable`, not an error, and polling goes on so the
 * panel appears once every replica has the route.
 */
export function useRedis(options: RedisOptions) {
  const poller = usePoller((signal) => fetchRedis(signal), options)
  const tier = computed(() => {
    const d = poller.data.value
    return d?.available === true ? d.tier : null
  })
  const unavailable = computed(() => poller.data.value?.available === false)
  return { ...poller, tier, unavailable }
}
