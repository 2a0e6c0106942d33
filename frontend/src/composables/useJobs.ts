import { computed, ref, shallowRef, toValue, type MaybeRefOrGetter } from 'vue'

import { api, describeError, timeoutSignal } from '@/api/client'
import type { EnqueueResponse, Job } from '@/api/types'

import { usePoller } from './usePoller'

export interface JobsOptions {
  /** Poll interval while no job is queued or processing (ms). */
  idleInterval: MaybeRefOrGetter<number>
  /** Poll interval while jobs are moving (ms). */
  busyInterval?: MaybeRefOrGetter<number>
  /** Poll interval while failing (ms), to notice recovery quickly. */
  retryInterval?: MaybeRefOrGetter<number>
  enabled?: MaybeRefOrGetter<boolean>
  /** How many jobs the table shows. */
  limit?: number
}

const ACTION_TIMEOUT_MS = 5000

function isMoving(job: Job): boolean {
  return job.status === 'queued' || job.status === 'processing' || job.status === 'failed'
}

/** Polls `GET /api/jobs` and enqueues jobs with `POST /api/jobs`. */
export function useJobs(options: JobsOptions) {
  const limit = options.limit ?? 12
  /** Jobs this page enqueued that the last poll did not list yet (shown as queued). */
  const pending = shallowRef<Job[]>([])
  /** Ids of the jobs this page enqueued. */
  const mine = ref(new Set<string>())
  const lastEnqueue = shallowRef<EnqueueResponse | null>(null)
  const enqueueError = ref<string | null>(null)
  const enqueuing = ref(false)
  const busy = ref(false)

  const poller = usePoller((signal) => api.jobs(signal), {
    interval: () => (busy.value ? toValue(options.busyInterval ?? 1000) : toValue(options.idleInterval)),
    retryInterval: options.retryInterval,
    enabled: options.enabled,
    onSuccess: (res) => {
      const listed = new Set(res.jobs.map((j) => j.id))
      pending.value = pending.value.filter((j) => !listed.has(j.id))
      busy.value = pending.value.length > 0 || res.jobs.some(isMoving)
    },
  })

  const jobs = computed<Job[]>(() => {
    const listed = poller.data.value?.jobs ?? []
    return [...pending.value, ...listed].sort((a, b) => b.enqueued_at - a.enqueued_at).slice(0, limit)
  })

  const counts = computed(() => {
    const d = poller.data.value
    return d === null ? null : { queued: d.queue_length, processing: d.processing_length, dead: d.dead_length }
  })

  async function enqueue(name: string): Promise<EnqueueResponse | null> {
    const trimmed = name.trim()
    if (trimmed.length === 0 || enqueuing.value) return null
    enqueuing.value = true
    enqueueError.value = null
    const { signal, cancel } = timeoutSignal(ACTION_TIMEOUT_MS)
    try {
      const res = await api.enqueue(trimmed, signal)
      const now = Date.now()
      mine.value.add(res.id)
      lastEnqueue.value = res
      pending.value = [
        {
          id: res.id,
          name: res.enqueued,
          status: 'queued',
          attempts: 0,
          worker: null,
          enqueued_at: now,
          updated_at: now,
          last_error: null,
        },
        ...pending.value,
      ]
      busy.value = true
      poller.pollNow()
      return res
    } catch (err) {
      enqueueError.value = describeError(signal.aborted ? signal.reason : err)
      return null
    } finally {
      cancel()
      enqueuing.value = false
    }
  }

  return { ...poller, jobs, counts, mine, lastEnqueue, enqueueError, enqueuing, enqueue }
}

export type JobsState = ReturnType<typeof useJobs>
