import type { Sql } from 'postgres'
import type { Logger } from './types.ts'
import { toSafeError } from './errors.ts'

/** The channel every instance listens on: `w:<workflow id>:<writer>` after a job's result, `j` when jobs are handed back. */
export const WAKEUP_CHANNEL = 'wix_install_engine'

/**
 * LISTEN/NOTIFY wake-ups between instances on one Postgres server: a `waitFor` here hears of a
 * result another instance committed, and the poller of jobs another instance handed back, at
 * once instead of at the next poll. Polling stays: a missed notification (a reconnect, PGlite,
 * which has no LISTEN) only costs a poll interval.
 */
export function createWakeups(sql: Sql, log: Logger, enabled: boolean) {
  const handlers = new Set<(payload: string) => void>()
  let subscription: Promise<{ unlisten(): Promise<void> } | undefined> | undefined
  return {
    /** Whether commits should notify: only where instances can listen. */
    enabled,
    /** Starts listening (once); resolves when LISTEN is in place, or failed. */
    async start(): Promise<void> {
      if (!enabled) return
      subscription ??= Promise.resolve(sql.listen(WAKEUP_CHANNEL, (payload) => handlers.forEach((fn) => fn(payload))))
        .catch((err) => {
          log.warn({ err: toSafeError(err) }, 'LISTEN failed: wake-ups fall back to polling')
          return undefined
        })
      await subscription
    },
    async stop() {
      const s = await subscription
      subscription = undefined
      await s?.unlisten().catch(() => {})
    },
    on(fn: (payload: string) => void) {
      handlers.add(fn)
      return () => handlers.delete(fn)
    },
  }
}

export type Wakeups = ReturnType<typeof createWakeups>
