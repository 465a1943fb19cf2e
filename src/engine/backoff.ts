import type { RetryPolicy } from './types.ts'

export const defaultRetryPolicy: RetryPolicy = { maxAttempts: 8, baseDelayMs: 1_000, maxDelayMs: 60_000 }

/** Upper bound on a server-requested wait, so a bad Retry-After cannot park a job for days. */
const MAX_RETRY_AFTER_MS = 5 * 60_000

/**
 * Delay before attempt `attempt + 1`: capped exponential backoff with "equal jitter" (half fixed,
 * half random), so retries from many installations spread out instead of arriving in waves.
 * A server's Retry-After is a floor, never shortened by the jitter.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, retryAfterMs?: number, random = Math.random): number {
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1))
  const jittered = exponential / 2 + random() * (exponential / 2)
  return retryAfterMs === undefined ? jittered : Math.max(jittered, Math.min(retryAfterMs, MAX_RETRY_AFTER_MS))
}
