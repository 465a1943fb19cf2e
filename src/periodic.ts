/**
 * Runs `task` again and again, `intervalMs` after each run ends (the first `firstDelayMs` after
 * `start()`), never two at once. A run that throws goes to `onError`, and the next one comes as
 * planned. The timer keeps no process alive. `stop()` schedules no more and waits for a run in
 * progress; `stopping` tells that run to end early (the maintenance jobs check it between steps).
 */
export function periodically(task: () => Promise<unknown>, o: { intervalMs: number; firstDelayMs?: number; onError: (err: unknown) => void }) {
  let timer: ReturnType<typeof setTimeout> | undefined
  let running: Promise<unknown> | undefined
  let stopping = false
  const schedule = (delayMs: number) => {
    timer = setTimeout(() => {
      running = task()
        .catch(o.onError)
        .finally(() => {
          running = undefined
          if (!stopping) schedule(o.intervalMs)
        })
    }, delayMs)
    timer.unref?.()
  }
  return {
    get stopping() {
      return stopping
    },
    start() {
      stopping = false
      schedule(o.firstDelayMs ?? o.intervalMs)
    },
    async stop() {
      stopping = true
      clearTimeout(timer)
      await running
    },
  }
}
