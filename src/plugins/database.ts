import fp from 'fastify-plugin'
import type { Sql } from 'postgres'
import { connect } from '../db/connect.ts'
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

/** The Postgres client, migrated before anything uses it; closed with the app if we opened it. */
export default fp<DatabaseOptions>(
  async (app, opts) => {
    if (!opts.sql && !opts.url) throw new Error('database plugin needs `sql` or `url`')
    const sql = opts.sql ?? connect(opts.url!, { max: opts.max })
    if (!opts.sql) app.addHook('onClose', async () => sql.end({ timeout: 5 }))
    if (opts.migrate !== false) await migrate(sql, app.log)
    app.decorate('sql', sql)
  },
  { name: 'database' },
)
