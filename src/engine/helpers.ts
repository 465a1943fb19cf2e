import { isTransientDatabaseError } from './pg.ts'

/** Waits `ms`, or less if `signal` aborts first (then resolves early, it does not throw). */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/**
 * For effects: retries a database write through a blip, so work already done outside (tokens
 * Wix issued for a spent code) is not lost to a retry. Honours the effect's `signal`: once the
 * run is aborted (timed out, cancelled, its job taken over) no further try starts, so nothing
 * an aborted run does lands after its successor's work. `transient` says which failures are a
 * blip (default: any transient SQLSTATE class, as the runner's commits); another call worth repeating may name its own.
 */
export async function persistently<T>(
  write: () => Promise<T>,
  o: { signal?: AbortSignal; attempts?: number; transient?: (err: unknown) => boolean } = {},
): Promise<T> {
  const attempts = o.attempts ?? 8
  const transient = o.transient ?? isTransientDatabaseError
  for (let attempt = 1; ; attempt++) {
    o.signal?.throwIfAborted()
    try {
      return await write()
    } catch (err) {
      if (attempt >= attempts || !transient(err)) throw err
      await abortableSleep(250 * attempt, o.signal)
    }
  }
}
