import fp from 'fastify-plugin'
import type { Sql } from 'postgres'
import { connect, isDatabaseUnavailable } from '../db/connect.ts'
import { migrate } from '../db/migrate.ts'

declare module 'fastify' {
  interface FastifyInstance {
    sql: Sql
  }
}

export interface DatabaseOptions {
  /** A client the caller owns (tests, an embedding app); else one is opened from `url`. */
  sql?: Sql
  url?: string
  max?: number
  migrate?: boolean
}

/** How long a starting instance waits for its database before giving up. */
const STARTUP_WAIT_MS = 60_000

/** An instance that starts while Postgres restarts waits for it instead of crashing. */
async function migrateWhenReachable(sql: Sql, log: { info(o: object, m?: string): void; warn(o: object, m?: string): void }) {
  const giveUpAt = Date.now() + STARTUP_WAIT_MS
  for (let attempt = 1; ; attempt++) {
    try {
      return await migrate(sql, log)
    } catch (err) {
      if (!isDatabaseUnavailable(err) || Date.now() > giveUpAt) throw err
      log.warn({ attempt, code: (err as { code?: string }).code }, 'database unreachable at start; waiting for it')
      await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** attempt)))
    }
  }
}

/** The Postgres client, migrated before anything uses it; closed with the app if we opened it. */
export default fp<DatabaseOptions>(
  async (app, opts) => {
    if (!opts.sql && !opts.url) throw new Error('database plugin needs `sql` or `url`')
    const sql = opts.sql ?? connect(opts.url!, { max: opts.max })
    if (!opts.sql) app.addHook('onClose', async () => sql.end({ timeout: 5 }))
    if (opts.migrate !== false) await migrateWhenReachable(sql, app.log)
    app.decorate('sql', sql)
  },
  { name: 'database' },
)
