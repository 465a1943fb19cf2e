/**
 * The retry budget of this service instance towards Wix: a token bucket that every retried Wix
 * call must take a token from. When Wix is down, a thousand installations each retrying on their
 * own backoff would still add up to a flood (and garbage codes sent on purpose would multiply
 * it); the bucket caps the sum. A first call never waits for it: only retries are rationed.
 */
export class RetryBudgetExhausted extends Error {
  readonly code = 'WIX_RETRY_BUDGET'
  readonly retryable = true
  constructor(readonly retryAfterMs: number) {
    super(`This instance's retry budget towards Wix is spent; retrying in ${Math.ceil(retryAfterMs / 1000)} s`)
    this.name = 'RetryBudgetExhausted'
  }

  /** As the engine stores an effect's error: the runner reads `retryAfterMs` as its next wait's floor. */
  toJSON() {
    return { code: this.code, message: this.message, retryable: true, retryAfterMs: this.retryAfterMs }
  }
}

export interface RetryBudget {
  /** Takes one retry, or throws `RetryBudgetExhausted` saying when the next one is free. */
  take(): void
}

/**
 * `perMinute` retries a minute, refilled continuously; up to ten seconds' worth may go at once
 * after a quiet spell. `perMinute` 0 means no cap.
 */
export function createRetryBudget(opts: { perMinute: number; now?: () => number }): RetryBudget {
  const now = opts.now ?? Date.now
  if (opts.perMinute <= 0) return { take() {} }
  const perMs = opts.perMinute / 60_000
  const capacity = Math.max(1, Math.ceil(opts.perMinute / 6))
  let tokens = capacity
  let at = now()
  return {
    take() {
      const t = now()
      tokens = Math.min(capacity, tokens + (t - at) * perMs)
      at = t
      if (tokens >= 1) {
        tokens -= 1
        return
      }
      throw new RetryBudgetExhausted(Math.ceil((1 - tokens) / perMs))
    },
  }
}
