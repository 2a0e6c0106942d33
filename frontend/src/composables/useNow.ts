import { getCurrentScope, onScopeDispose, readonly, ref, type Ref } from 'vue'

/** The current time (epoch ms), refreshed every `every` ms; for "12 s ago" labels. */
export function useNow(every = 1000): Readonly<Ref<number>> {
  const now = ref(Date.now())
  const timer = setInterval(() => {
    now.value = Date.now()
  }, every)
  if (getCurrentScope()) onScopeDispose(() => clearInterval(timer))
  return readonly(now)
}
