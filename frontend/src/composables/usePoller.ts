import {
  computed,
  getCurrentScope,
  onScopeDispose,
  readonly,
  ref,
  shallowRef,
  toValue,
  watch,
  type MaybeRefOrGetter,
  type Ref,
  type ShallowRef,
} from 'vue'

import { describeError, timeoutError } from '@/api/client'

import { usePageVisibility } from './usePageVisibility'

export interface PollerOptions<T> {
  /** Time between the starts of two polls, in ms. */
  interval: MaybeRefOrGetter<number>
  /** Interval after a failed poll, if it should differ (e.g. retry a slow poll sooner). */
  retryInterval?: MaybeRefOrGetter<number>
  /** A poll that takes longer is aborted and counts as a failure (ms, default 4000). */
  timeout?: MaybeRefOrGetter<number>
  /** `false` pauses polling (e.g. a pause button); default `true`. */
  enabled?: MaybeRefOrGetter<boolean>
  /** Called with every good response, before `data` is replaced. */
  onSuccess?: (data: T) => void
}

export interface Poller<T> {
  /** The last good response; kept while later polls fail. */
  data: Readonly<ShallowRef<T | null>>
  /** Why the most recent poll failed, or null after a success. */
  error: Readonly<Ref<string | null>>
  /** Failed polls in a row. */
  failures: Readonly<Ref<number>>
  /** When the last good response arrived (epoch ms). */
  lastSuccessAt: Readonly<Ref<number | null>>
  /** Measured time between the starts of the last two polls (ms). */
  measuredInterval: Readonly<Ref<number | null>>
  /** Round-trip time of the last good poll (ms). */
  latency: Readonly<Ref<number | null>>
  /** Number of polls started. */
  polls: Readonly<Ref<number>>
  inFlight: Readonly<Ref<boolean>>
  /** Polling is on: enabled and the tab is visible. */
  active: Readonly<Ref<boolean>>
  /** The tab is hidden, so polling waits. */
  hidden: Readonly<Ref<boolean>>
  /** Poll at once (unless a poll is in flight); the cadence restarts from now. */
  pollNow: () => void
}

const DEFAULT_TIMEOUT_MS = 4000

/**
 * Polls `fetcher` every `interval` ms.
 *
 * - Never overlaps: the next poll is scheduled only after the previous one settled,
 *   at `start + interval` (or at once if the poll took longer than that).
 * - Every poll is bounded by an AbortController timeout.
 * - Pauses while the tab is hidden and polls at once when it comes back.
 * - A failure keeps the last good `data`, sets `error`, and polling simply goes on,
 *   so it recovers by itself.
 */
export function usePoller<T>(fetcher: (signal: AbortSignal) => Promise<T>, options: PollerOptions<T>): Poller<T> {
  const data = shallowRef<T | null>(null)
  const error = ref<string | null>(null)
  const failures = ref(0)
  const lastSuccessAt = ref<number | null>(null)
  const measuredInterval = ref<number | null>(null)
  const latency = ref<number | null>(null)
  const polls = ref(0)
  const inFlight = ref(false)

  const visible = usePageVisibility()
  const active = computed(() => (toValue(options.enabled) ?? true) && visible.value)
  const hidden = computed(() => !visible.value)

  let timer: ReturnType<typeof setTimeout> | undefined
  let controller: AbortController | null = null
  /** Start of the previous poll in the current unbroken run of polling. */
  let lastStart: number | null = null
  let disposed = false

  function clearTimer(): void {
    if (timer !== undefined) {
      clearTimeout(timer)
      timer = undefined
    }
  }

  function schedule(): void {
    clearTimer()
    if (disposed || inFlight.value || !active.value) return
    const base = failures.value > 0 && options.retryInterval !== undefined ? options.retryInterval : options.interval
    const interval = Math.max(0, toValue(base))
    const wait = lastStart === null ? 0 : Math.max(0, lastStart + interval - Date.now())
    timer = setTimeout(() => void poll(), wait)
  }

  async function poll(): Promise<void> {
    clearTimer()
    if (disposed || inFlight.value) return
    inFlight.value = true
    polls.value++
    const start = Date.now()
    if (lastStart !== null) measuredInterval.value = start - lastStart
    lastStart = start

    const ctl = new AbortController()
    controller = ctl
    const timeoutMs = toValue(options.timeout) ?? DEFAULT_TIMEOUT_MS
    const deadline = setTimeout(() => ctl.abort(timeoutError(timeoutMs)), timeoutMs)
    try {
      const result = await fetcher(ctl.signal)
      if (disposed) return
      options.onSuccess?.(result)
      data.value = result
      error.value = null
      failures.value = 0
      lastSuccessAt.value = Date.now()
      latency.value = Date.now() - start
    } catch (err) {
      if (disposed) return
      const reason: unknown = ctl.signal.aborted ? ctl.signal.reason : err
      error.value = describeError(reason)
      failures.value++
    } finally {
      clearTimeout(deadline)
      if (controller === ctl) controller = null
      inFlight.value = false
      schedule()
    }
  }

  watch(active, (on) => {
    if (on) {
      // A fresh run: the gap while paused or hidden is not a poll interval.
      lastStart = null
      schedule()
    } else {
      clearTimer()
    }
  })

  watch(
    () => [toValue(options.interval), toValue(options.retryInterval)],
    () => schedule(),
  )

  schedule()

  if (getCurrentScope()) {
    onScopeDispose(() => {
      disposed = true
      clearTimer()
      controller?.abort()
    })
  }

  return {
    data,
    error: readonly(error),
    failures: readonly(failures),
    lastSuccessAt: readonly(lastSuccessAt),
    measuredInterval: readonly(measuredInterval),
    latency: readonly(latency),
    polls: readonly(polls),
    inFlight: readonly(inFlight),
    active,
    hidden,
    pollNow: () => {
      if (inFlight.value || disposed) return
      lastStart = null
      void poll()
    },
  }
}
