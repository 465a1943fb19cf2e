/**
 * What the engine knows of Postgres and its driver beyond SQL: the error codes it acts on, which
 * errors are the database's weather rather than the statement's fault, and a cancel that cannot
 * end the process. The service's other modules take them from the engine's index.
 */

/** Postgres error codes we act on. */
export const PG = {
  /** unique_violation */
  UNIQUE_VIOLATION: '23505',
  /** admin_shutdown: the server is restarting */
  ADMIN_SHUTDOWN: '57P01',
  /** crash_shutdown */
  CRASH_SHUTDOWN: '57P02',
  /** cannot_connect_now: the server is starting up */
  CANNOT_CONNECT_NOW: '57P03',
  /** undefined_table */
  UNDEFINED_TABLE: '42P01',
  /** too_many_connections: the server is full, not gone */
  TOO_MANY_CONNECTIONS: '53300',
  /** lock_not_available: our lock_timeout gave up on a lock another session holds (see `connect`) */
  LOCK_NOT_AVAILABLE: '55P03',
  /** query_canceled: our statement_timeout, or a cancel we sent */
  QUERY_CANCELED: '57014',
  /** read_only_sql_transaction: a failover left us on a standby for now */
  READ_ONLY_TRANSACTION: '25006',
} as const

/** Errors that mean "the database is not reachable right now", not "the query was wrong". */
const UNAVAILABLE = new Set<string>([
  PG.ADMIN_SHUTDOWN, PG.CRASH_SHUTDOWN, PG.CANNOT_CONNECT_NOW,
  // postgres.js and Node socket errors
  'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT',
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND',
  // the engine's writer gave up on a statement the database did not answer (src/engine/writer.ts)
  'WRITE_TIMEOUT',
])

export const isDatabaseUnavailable = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && (UNAVAILABLE.has(code) || code.startsWith('08'))
}

/**
 * Errors that say nothing about the statement, only about the database's weather: worth the
 * same statement again later. The unavailable ones above, and the SQLSTATE classes 08
 * (connection), 40 (rollback: deadlock, serialization), 53 (insufficient resources), 57
 * (operator intervention: cancelled, shutting down), plus 25006 (a standby after a failover) and
 * 55P03 (a lock wait given up, should a lock_timeout be configured: another session held the row).
 */
export const isTransientDatabaseError = (err: unknown): boolean => {
  if (isDatabaseUnavailable(err)) return true
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.length === 5
    && (['08', '40', '53', '57'].includes(code.slice(0, 2)) || code === PG.READ_ONLY_TRANSACTION || code === PG.LOCK_NOT_AVAILABLE)
}

/** Errors an HTTP client should come back from later (503 with Retry-After), the database being up. */
export const isDatabaseBusy = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code
  return code === PG.TOO_MANY_CONNECTIONS || code === PG.READ_ONLY_TRANSACTION
}

/**
 * Cancels a running query, as `query.cancel()` would, without its unhandled rejection:
 * postgres.js drops the promise of the cancel request it sends on a connection of its own, and
 * that promise rejects when the connection cannot be made (the server down or restarting), which
 * ends the process. Here the request's failure is ignored: the statement then ends on its own
 * (its connection breaks, or it finishes), as it would have if the cancel had come too late.
 */
export function cancelQuery(query: { cancel(): unknown }) {
  const q = query as DriverQuery
  if (typeof q.canceller !== 'function') return void q.cancel() // another driver version: its own way
  // Not sent yet (no session state): it waits in the pool's queue, or it is the first statement
  // of a connection still opening. Cancelled there, postgres.js 3.4 opens the connection, finds
  // its first statement cancelled and never hands the connection out again: a slot lost for good
  // (with a pool of one, every later statement waits for ever). So the statement is first made
  // one that does nothing: a queued one is dropped all the same, and a connection's first runs,
  // harmless, and the connection opens as any other.
  const unsent = q.state === null
  if (unsent) [q.strings, q.args] = [NOTHING, []]
  const request = q.canceller(query)
  q.canceller = null
  if (unsent) q.cancelled = null
  request.catch(() => {})
}

/** What cancelQuery reads and writes of a postgres.js 3.4 query (test/killed-sessions.test.ts holds the driver to it). */
interface DriverQuery {
  canceller?: ((query: unknown) => Promise<unknown>) | null
  cancel(): unknown
  /** The session it was sent on; null until it is sent. */
  state?: unknown
  /** The statement, built when it is sent. */
  strings?: readonly string[]
  args?: unknown[]
  /** Set by the canceller: a query so marked is skipped when a connection comes to send it. */
  cancelled?: unknown
}

/** A statement that does nothing, as a tagged template's strings (one array: the driver caches by it). */
const NOTHING: readonly string[] = Object.assign(['select 1'], { raw: ['select 1'] })
