import type { Sql } from 'postgres'

/**
 * postgres.js 3.4 (3.4.9, and 3.4.10 alike) asks every connection it opens for the server's
 * array types before the connection's first statement, in a promise nobody holds
 * (`fetchArrayTypes()` in its connection.js, called and dropped). When the connection is lost
 * during that query, the promise rejects and nothing handles it: the socket's error (ECONNRESET),
 * or, when the server only closed the connection, the error of the reconnect that follows (a raw
 * `connect ECONNREFUSED` while the server restarts). A process that ends on unhandled rejections
 * then ends on a Postgres restart, whenever the restart lands while one of its connections is
 * still opening: under load, after one restart, many are.
 *
 * The types are the server's: one answer serves every later connection of the pool (the driver
 * keeps the parsers on the pool's options, not on a connection). So once a pool has them, its
 * new connections stop asking (`fetchTypesOnce`), and a restart can no longer land in that query.
 * What is left is a pool's first connection, which `isLostTypesFetch` names for the process's
 * last resort.
 */

/** The statement postgres.js sends to fetch the array types (its connection.js). */
const TYPES_QUERY = /select b\.oid, b\.typarray\s+from pg_catalog\.pg_type/

interface DriverOptions {
  fetch_types: boolean
  shared: { typeArrayMap: Record<string, number> }
}

/**
 * New connections of `sql` fetch the array types only until one of them has: the driver reads
 * `fetch_types` from the pool's options as each connection opens, and here that reads "only if
 * none is known yet". For the pools the service opens (`connect`), never a user's own: the types
 * of a `create type` made later would not be learned by its new connections (the service's
 * migrations make none).
 */
export function fetchTypesOnce<T extends Sql>(sql: T): T {
  const options = (sql as unknown as { options?: Partial<DriverOptions> }).options
  const known = options?.shared?.typeArrayMap
  // Another driver version, or a pool that fetches none: as it is.
  if (!options || options.fetch_types !== true || !known) return sql
  Object.defineProperty(options, 'fetch_types', { configurable: true, enumerable: true, get: () => Object.keys(known).length === 0 })
  return sql
}

/**
 * The driver's own array-types query, lost with its connection (see above): the rejection nobody
 * could handle. The connection it was on reconnects by itself, and the statement that opened it
 * has failed to its caller with the same error; nothing of the process's own is left undone.
 */
export function isLostTypesFetch(err: unknown): boolean {
  // postgres.js puts the failed statement's text on the error, as a non-enumerable `query`.
  const query = (err as { query?: unknown } | null)?.query
  return typeof query === 'string' && TYPES_QUERY.test(query)
}
