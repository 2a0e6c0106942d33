import { describe, expect, it, vi } from 'vitest'
import { ref } from 'vue'

import { composableScope, deferred, flush, setVisibility } from '@/test/helpers'

import { usePoller, type PollerOptions } from './usePoller'

describe('usePoller', () => {
  const scope = composableScope()

  function start<T>(fetcher: (signal: AbortSignal) => Promise<T>, options: PollerOptions<T>) {
    const poller = scope().run(() => usePoller(fetcher, options))
    if (poller === undefined) throw new Error('scope is not active')
    return poller
  }

  it('polls at once, then once per interval, and measures the real interval', async () => {
    let n = 0
    const fetcher = vi.fn(async () => ++n)
    const p = start(fetcher, { interval: 1500 })

    await vi.advanceTimersByTimeAsync(0)
    expect(fetcher).toHaveBeenCalledTimes(1)
    expect(p.data.value).toBe(1)
    expect(p.measuredInterval.value).toBeNull()

    await vi.advanceTimersByTimeAsync(1499)
    expect(fetcher).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(fetcher).toHaveBeenCalledTimes(2)
    expect(p.measuredInterval.value).toBe(1500)

    await vi.advanceTimersByTimeAsync(3000)
    expect(fetcher).toHaveBeenCalledTimes(4)
    expect(p.data.value).toBe(4)
    expect(p.polls.value).toBe(4)
  })

  it('never overlaps: a slow poll delays the next one instead of running beside it', async () => {
    const slow = deferred<string>()
    let inFlight = 0
    let maxInFlight = 0
    const fetcher = vi.fn(async () => {
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      try {
        return fetcher.mock.calls.length === 1 ? await slow.promise : 'fast'
      } finally {
        inFlight--
      }
    })
    const p = start(fetcher, { interval: 1000, timeout: 60_000 })

    await vi.advanceTimersByTimeAsync(5000)
    expect(fetcher).toHaveBeenCalledTimes(1)
    expect(p.inFlight.value).toBe(true)

    slow.resolve('slow')
    await flush()
    expect(p.data.value).toBe('slow')
    // The interval has long passed, so the next poll starts at once...
    await vi.advanceTimersByTimeAsync(0)
    expect(fetcher).toHaveBeenCalledTimes(2)
    expect(p.measuredInterval.value).toBe(5000)
    // ...and then the normal cadence resumes.
    await vi.advanceTimersByTimeAsync(1000)
    expect(fetcher).toHaveBeenCalledTimes(3)
    expect(maxInFlight).toBe(1)
  })

  it('aborts a poll that takes longer than the timeout and reports it', async () => {
    const signals: AbortSignal[] = []
    const fetcher = vi.fn(
      (signal: AbortSignal) =>
        new Promise<number>((_resolve, reject) => {
          signals.push(signal)
          signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')))
        }),
    )
    const p = start(fetcher, { interval: 1500, timeout: 1000 })

    await vi.advanceTimersByTimeAsync(999)
    expect(signals[0]?.aborted).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(signals[0]?.aborted).toBe(true)
    expect(p.error.value).toBe('timed out after 1 s')
    expect(p.failures.value).toBe(1)
    expect(p.inFlight.value).toBe(false)

    await vi.advanceTimersByTimeAsync(500)
    expect(fetcher).toHaveBeenCalledTimes(2)
  })

  it('pauses while the tab is hidden and polls at once when it is back', async () => {
    const fetcher = vi.fn(async () => 'ok')
    const p = start(fetcher, { interval: 1500 })
    await vi.advanceTimersByTimeAsync(0)
    expect(fetcher).toHaveBeenCalledTimes(1)

    setVisibility('hidden')
    await flush()
    expect(p.hidden.value).toBe(true)
    expect(p.active.value).toBe(false)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(fetcher).toHaveBeenCalledTimes(1)

    setVisibility('visible')
    await vi.advanceTimersByTimeAsync(0)
    expect(fetcher).toHaveBeenCalledTimes(2)
    // The hidden minute is not reported as a poll interval.
    expect(p.measuredInterval.value).toBeNull()
    await vi.advanceTimersByTimeAsync(1500)
    expect(fetcher).toHaveBeenCalledTimes(3)
    expect(p.measuredInterval.value).toBe(1500)
  })

  it('does not start another poll when the tab comes back while one is in flight', async () => {
    const slow = deferred<string>()
    const fetcher = vi.fn((): Promise<string> =>
      fetcher.mock.calls.length === 1 ? slow.promise : Promise.resolve('x'),
    )
    const p = start(fetcher, { interval: 1000, timeout: 60_000 })
    await vi.advanceTimersByTimeAsync(0)
    setVisibility('hidden')
    await flush()
    setVisibility('visible')
    await vi.advanceTimersByTimeAsync(3000)
    expect(fetcher).toHaveBeenCalledTimes(1)
    slow.resolve('done')
    await flush()
    expect(p.data.value).toBe('done')
    await vi.advanceTimersByTimeAsync(0)
    expect(fetcher).toHaveBeenCalledTimes(2)
  })

  it('keeps the last good data through failures and recovers by itself', async () => {
    const answers: (number | Error)[] = [1, new Error('boom'), new TypeError('Failed to fetch'), 2]
    const fetcher = vi.fn(async () => {
      const a = answers.shift()
      if (a === undefined) return 3
      if (a instanceof Error) throw a
      return a
    })
    const p = start(fetcher, { interval: 1000 })

    await vi.advanceTimersByTimeAsync(0)
    expect(p.data.value).toBe(1)
    const firstSuccess = p.lastSuccessAt.value

    await vi.advanceTimersByTimeAsync(1000)
    expect(p.error.value).toBe('boom')
    expect(p.data.value).toBe(1)
    expect(p.failures.value).toBe(1)

    await vi.advanceTimersByTimeAsync(1000)
    expect(p.error.value).toBe('network error')
    expect(p.failures.value).toBe(2)
    expect(p.data.value).toBe(1)
    expect(p.lastSuccessAt.value).toBe(firstSuccess)

    await vi.advanceTimersByTimeAsync(1000)
    expect(p.error.value).toBeNull()
    expect(p.failures.value).toBe(0)
    expect(p.data.value).toBe(2)
    expect(p.lastSuccessAt.value).toBeGreaterThan(firstSuccess ?? Infinity)
  })

  it('retries at the retry interval while failing, then goes back to the normal one', async () => {
    let fail = true
    const fetcher = vi.fn(async () => {
      if (fail) throw new Error('down')
      return 'ok'
    })
    const p = start(fetcher, { interval: 5000, retryInterval: 1000 })
    await vi.advanceTimersByTimeAsync(0)
    expect(p.error.value).toBe('down')
    await vi.advanceTimersByTimeAsync(1000)
    expect(fetcher).toHaveBeenCalledTimes(2)
    fail = false
    await vi.advanceTimersByTimeAsync(1000)
    expect(fetcher).toHaveBeenCalledTimes(3)
    expect(p.error.value).toBeNull()
    await vi.advanceTimersByTimeAsync(4999)
    expect(fetcher).toHaveBeenCalledTimes(3)
    await vi.advanceTimersByTimeAsync(1)
    expect(fetcher).toHaveBeenCalledTimes(4)
  })

  it('stops while disabled and resumes when enabled again', async () => {
    const enabled = ref(true)
    const fetcher = vi.fn(async () => 'ok')
    start(fetcher, { interval: 1000, enabled })
    await vi.advanceTimersByTimeAsync(0)
    enabled.value = false
    await vi.advanceTimersByTimeAsync(10_000)
    expect(fetcher).toHaveBeenCalledTimes(1)
    enabled.value = true
    await vi.advanceTimersByTimeAsync(0)
    expect(fetcher).toHaveBeenCalledTimes(2)
  })

  it('follows a changed interval at once', async () => {
    const interval = ref(5000)
    const fetcher = vi.fn(async () => 'ok')
    const p = start(fetcher, { interval })
    await vi.advanceTimersByTimeAsync(1000)
    expect(fetcher).toHaveBeenCalledTimes(1)
    interval.value = 500
    await vi.advanceTimersByTimeAsync(0)
    // 1000 ms since the last start is more than the new interval: poll now.
    expect(fetcher).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(500)
    expect(fetcher).toHaveBeenCalledTimes(3)
    expect(p.measuredInterval.value).toBe(500)
  })

  it('pollNow polls at once but never beside a poll in flight', async () => {
    const gate = deferred<string>()
    const fetcher = vi.fn((): Promise<string> =>
      fetcher.mock.calls.length === 2 ? gate.promise : Promise.resolve('x'),
    )
    const p = start(fetcher, { interval: 10_000, timeout: 60_000 })
    await vi.advanceTimersByTimeAsync(0)
    p.pollNow()
    expect(fetcher).toHaveBeenCalledTimes(2)
    p.pollNow()
    p.pollNow()
    expect(fetcher).toHaveBeenCalledTimes(2)
    gate.resolve('y')
    await flush()
    expect(p.data.value).toBe('y')
  })

  it('aborts the poll in flight and stops when its scope is disposed', async () => {
    let seen: AbortSignal | undefined
    const fetcher = vi.fn(
      (signal: AbortSignal) =>
        new Promise<string>(() => {
          seen = signal
        }),
    )
    start(fetcher, { interval: 1000 })
    await vi.advanceTimersByTimeAsync(0)
    scope().stop()
    expect(seen?.aborted).toBe(true)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(fetcher).toHaveBeenCalledTimes(1)
  })
})
