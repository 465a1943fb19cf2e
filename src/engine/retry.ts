import { backoffDelay } from './backoff.ts'
import { abortableSleep } from './helpers.ts'
import { isTransientDatabaseError } from './pg.ts'
import type { RetryPolicy } from './types.ts'

export interface RetryOptions {
  /** How many tries in all and how long between them (capped exponential, equal jitter). */
  policy: RetryPolicy
  /** Which failures are worth another try; any other is thrown at once. */
  retryIf: (err: unknown) => boolean
  /** Once aborted, no further try starts (the last failure is thrown). */
  signal?: AbortSignal
  /** A time (`Date.now()` ms) after which no further try starts, whatever the policy allows. */
  giveUpAt?: number
  /** Told before each wait: for a log line. */
  onRetry?: (err: unknown, tries: number, delayMs: number) => void
}

/**
 * The one retry loop: calls `attempt` until it succeeds, its failure is not one to retry, the
 * policy's tries are spent, the signal aborts or `giveUpAt` passes; then throws the last failure.
 * Each caller names its policy (`COMMIT_RETRY`, `DEADLOCK_RESEND`, …) where it retries, so what
 * is retried, how often and how fast is read in one place. `attempt` is told which try it is.
 */
export async function retry<T>(attempt: (tries: number) => Promise<T>, o: RetryOptions): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt(tries)
    } catch (err) {
      if (tries >= o.policy.maxAttempts || !o.retryIf(err) || o.signal?.aborted) throw err
      let delayMs = o.policy.maxDelayMs > 0 ? backoffDelay(tries, o.policy) : 0
      if (o.giveUpAt !== undefined) {
        const left = o.giveUpAt - Date.now()
        if (left <= 0) throw err
        delayMs = Math.min(delayMs, left)
      }
      o.onRetry?.(err, tries, delayMs)
      if (delayMs > 0) await abortableSleep(delayMs, o.signal)
      if (o.signal?.aborted) throw err
    }
  }
}

/** `persistently`'s default: about 8 s of a database blip, as the runner rides out its commits. */
const EFFECT_WRITE_RETRY: RetryPolicy = { maxAttempts: 8, baseDelayMs: 250, maxDelayMs: 2_000 }

/**
 * For effects: retries a database write through a blip, so work already done outside (tokens
 * Wix issued for a spent code) is not lost to a retry. Honours the effect's `signal`: once the
 * run is aborted (timed out, cancelled, its job taken over) no further try starts, so nothing
 * an aborted run does lands after its successor's work. `transient` says which failures are a
 * blip (default: any transient SQLSTATE class, as the runner's commits); another call worth
 * repeating may name its own, and `attempts` how many tries it gets.
 */
export function persistently<T>(
  write: () => Promise<T>,
  o: { signal?: AbortSignal; attempts?: number; transient?: (err: unknown) => boolean } = {},
): Promise<T> {
  const policy = { ...EFFECT_WRITE_RETRY, maxAttempts: o.attempts ?? EFFECT_WRITE_RETRY.maxAttempts }
  return retry(() => {
    o.signal?.throwIfAborted()
    return write()
  }, { policy, retryIf: o.transient ?? isTransientDatabaseError, signal: o.signal })
}
