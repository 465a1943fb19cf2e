// Node's timers, not the global ones: on Deno only these have unref().
import { clearTimeout, setTimeout } from 'node:timers'
import type { FakeWix, FakeWixFailure } from './model-types.ts'

export const MAX_HANG_MS = 60_000

type FailureSwitches = Pick<FakeWix, 'failNext' | 'takeFailure' | 'pendingFailures' | 'hold' | 'releaseAll'>

/** The failures queued for the next calls, and the calls held by a delay or a hang. */
export function createFailureSwitches(): FailureSwitches & { clearFailures(): void } {
  const failures: Array<FakeWixFailure & { left: number }> = []
  const held = new Set<() => void>()
  return {
    failNext(f) { failures.push({ ...f, left: f.times ?? 1 }) },
    clearFailures() { failures.length = 0 },
    takeFailure(endpoint, grant) {
      const i = failures.findIndex((f) =>
        (f.endpoint === 'any' || f.endpoint === endpoint) && (!f.grant || f.grant === grant))
      if (i < 0) return undefined
      const f = failures[i]!
      if (--f.left <= 0) failures.splice(i, 1)
      return f
    },
    pendingFailures: () => failures.map((f) => ({ ...f })),
    hold(ms) {
      return new Promise((resolve) => {
        const release = () => { clearTimeout(timer); held.delete(release); resolve('released') }
        const timer = setTimeout(() => { held.delete(release); resolve('elapsed') }, Math.min(ms, MAX_HANG_MS))
        timer.unref()
        held.add(release)
      })
    },
    releaseAll() { for (const release of [...held]) release() },
  }
}
