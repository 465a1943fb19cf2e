import postgres, { type Sql, type TransactionSql } from 'postgres'
import { fetchTypesOnce } from './driver.ts'

// The engine's own Postgres helpers (error codes, what is a blip, a cancel that cannot end the
// process), for the rest of the service: the engine imports nothing from outside it.
export { cancelQuery, isDatabaseBusy, isDatabaseUnavailable, isTransientDatabaseError, PG } from '../engine/index.ts'

export interface ConnectOptions {
  /** PGlite serves one session: the embedded database needs exactly one connection. */
  max?: number
  /** A Unix socket to reach the server on (the embedded database); `url` then names only user and database. */
  path?: string
  /** Server-side deadline of every statement (60 s); 0: none. Not set on the embedded database. */
  statementTimeoutMs?: number
  /** How long a statement waits for a lock another session holds (5 s); 0: for ever. Not set on the embedded database. */
  lockTimeoutMs?: number
}

/**
 * No statement of the service should run for a minute (the admin list at a million rows takes
 * milliseconds; the engine's writer gives up on its own after 15 s): one that does is a hung
 * plan or a connection nobody reads, and the server ends it (57014) instead of holding a
 * connection and its locks for ever. Migrations and the vacuum lift it for themselves (`unbounded`).
 */
export const STATEMENT_TIMEOUT_MS = 60_000
/**
 * A statement behind a row lock (an admin's open transaction, the vault's FOR SHARE fence held
 * across a Wix call) gives up after 5 s with 55P03, a blip its caller retries, instead of
 * holding its connection and everything queued behind it.
 */
export const LOCK_TIMEOUT_MS = 5_000

/** Lifts the pool's statement and lock timeouts for the rest of transaction `tx` (a migration waits for another's lock, an index build takes its time). */
export const unbounded = (tx: Sql | TransactionSql) =>
  tx`select set_config('statement_timeout', '0', true), set_config('lock_timeout', '0', true)`

export function connect(url: string, opts: ConnectOptions = {}) {
  // The array types once per pool: a restart landing in a later connection's fetch would end the process (./driver.ts).
  return fetchTypesOnce(postgres(url, {
    max: opts.max ?? 10,
    ...(opts.path && { path: opts.path }),
    onnotice: () => {},
    // Fail fast while the database is away: callers answer 503 instead of hanging.
    connect_timeout: 5,
    // postgres.js waits 3^n/100 s (up to 20 s) before reconnecting after the pool's n-th failed
    // connection, n counted across the pool: after an outage the service would answer 503 for
    // seconds after Postgres is back. The breaker already keeps requests off a dead database,
    // so reconnect within a second.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1) * (0.5 + Math.random() / 2),
    connection: {
      application_name: 'wix-install-engine',
      // PGlite is one session multiplexed between connections, and runs one statement at a time anyway.
      ...(!opts.path && {
        statement_timeout: opts.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS,
        lock_timeout: opts.lockTimeoutMs ?? LOCK_TIMEOUT_MS,
      }),
    },
  }))
}
