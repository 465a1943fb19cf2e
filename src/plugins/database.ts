import fp from 'fastify-plugin'
import type { Sql } from 'postgres'
import { connect, isDatabaseUnavailable } from '../db/connect.ts'
import { migrate } from '../db/migrate.ts'
import { retry, type RetryPolicy } from '../engine/index.ts'

declare module 'fastify' {
  interface FastifyInstance {
    sql: Sql
    /** Lease renewals and job claims, on a pool of their own (the engine's `leaseSql`); none when the caller gave `sql`. */
    leaseSql: Sql | undefined
  }
}

export interface DatabaseOptions {
  /** A client the caller owns (tests, an embedding app); else one is opened from `url`. */
  sql?: Sql
  url?: string
  max?: number
  migrate?: boolean
  /** How long a starting instance waits for an unreachable database before it fails. */
  startTimeoutMs: number
}

/** Tries to migrate while the database is unreachable at start: doubling waits, up to 5 s apart. */
const START_RETRY: RetryPolicy = { maxAttempts: Infinity, baseDelayMs: 500, maxDelayMs: 5_000 }

/** An instance that starts while Postgres restarts waits for it, up to `waitMs`, instead of crashing. */
async function migrateWhenReachable(sql: Sql, waitMs: number, log: { info(o: object, m?: string): void; warn(o: object, m?: string): void }) {
  try {
    return await retry(() => migrate(sql, log), {
      policy: START_RETRY,
      retryIf: isDatabaseUnavailable,
      giveUpAt: Date.now() + waitMs,
      onRetry: (err, attempt) => log.warn({ attempt, code: (err as { code?: string }).code }, 'database unreachable at start; waiting for it'),
    })
  } catch (err) {
    if (!isDatabaseUnavailable(err)) throw err
    const code = (err as { code?: string }).code
    throw new Error(`Database unreachable (${code}) for startTimeoutMs (${waitMs} ms): to wait longer, raise startTimeoutMs and Fastify's pluginTimeout above it`)
  }
}

/** Unanswered (the database restarting as the service starts), it is taken for a server. */
const servedByPGlite = (sql: Sql) =>
  sql<{ version: string }[]>`select version()`.then(([row]) => row!.version.includes('PGlite'), () => false)

/** The Postgres client, migrated before anything uses it; closed with the app if we opened it. */
export default fp<DatabaseOptions>(
  async (app, opts) => {
    if (!opts.sql && !opts.url) throw new Error('database plugin needs `sql` or `url`')
    const sql = opts.sql ?? connect(opts.url!, { max: opts.max })
    if (!opts.sql) app.addHook('onClose', async () => sql.end({ timeout: 5 }))
    if (opts.migrate !== false) await migrateWhenReachable(sql, opts.startTimeoutMs, app.log)
    // Lease renewals and claims on two connections of their own, on a Postgres server only: PGlite
    // (tests reach one by URL) serves its one session through a few connection slots, and two
    // more left a process restarted beside its killed predecessor's connections none to claim with.
    const leaseSql = opts.sql || (await servedByPGlite(sql)) ? undefined : connect(opts.url!, { max: 2 })
    if (leaseSql) app.addHook('onClose', async () => leaseSql.end({ timeout: 5 }))
    app.decorate('sql', sql)
    app.decorate('leaseSql', leaseSql)
  },
  { name: 'database' },
)
