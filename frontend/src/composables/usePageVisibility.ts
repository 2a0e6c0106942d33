import { getCurrentScope, onScopeDispose, readonly, ref, type Ref } from 'vue'

/** `true` while the tab is visible; follows `visibilitychange`. */
export function usePageVisibility(): Readonly<Ref<boolean>> {
  const visible = ref(document.visibilityState !== 'hidden')
  const update = (): void => {
    visible.value = document.visibilityState !== 'hidden'
  }
  document.addEventListener('visibilitychange', update)
  if (getCurrentScope()) {
    onScopeDispose(() => document.removeEventListener('visibilitychange', update))
  }
  return readonly(visible)
}
