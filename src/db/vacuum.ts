import type { Sql } from 'postgres'
import { toSafeError } from '../engine/index.ts'
import { periodically } from '../periodic.ts'

/**
 * Vacuums the service's own tables when the Postgres server's autovacuum is off.
 *
 * Every accepted event writes a new version of its workflow's row (and of a job's, a token's);
 * the old ones stay until a vacuum. Without autovacuum nothing ever comes back: each flow leaves
 * about twenty dead rows, every lookup walks them, and the engine's Postgres CPU per flow climbs
 * as long as the server runs (bench/README.md, "Autovacuum off"). A server with autovacuum on
 * (the default) is left to it. Tables are picked as autovacuum would pick them, a little more
 * eagerly, and vacuumed one at a time with SKIP_LOCKED, so instances never queue behind one
 * another's vacuum of the same table; VACUUM never blocks reads or writes.
 */

/** Dead rows a table may hold before it is vacuumed: this many, plus `SCALE` of its live rows. */
const THRESHOLD = 500
const SCALE = 0.1

export interface VacuumOptions {
  sql: Sql
  /** Whose tables: the service's schemas. */
  schemas: string[]
  log: { info(o: object, m: string): void; warn(o: object, m: string): void }
  /** How often to look (15 s): one read of the statistics views when nothing is due. */
  intervalMs?: number
}

export function createVacuumKeeper(o: VacuumOptions) {
  const { sql, schemas, log } = o
  const intervalMs = o.intervalMs ?? 15_000
  let warned = false

  /** Vacuums what is due, if the server does not: the tables vacuumed (none when autovacuum is on). */
  async function runOnce(): Promise<string[]> {
    const [setting] = await sql<{ on: boolean }[]>`select current_setting('autovacuum') = 'on' as on`
    if (setting!.on) return []
    if (!warned) {
      warned = true
      log.warn({ autovacuum: 'off' }, 'vacuum: the server\'s autovacuum is off; the service vacuums its own tables (turn it on: autovacuum = on)')
    }
    const due = await sql<{ name: string; dead: number }[]>`
      select format('%I.%I', schemaname, relname) as name, n_dead_tup::int as dead
      from pg_stat_user_tables
      where schemaname = any(${schemas}::text[]) and n_dead_tup > ${THRESHOLD}::int + ${SCALE}::float8 * n_live_tup
      order by n_dead_tup desc`
    const done: string[] = []
    for (const table of due) {
      // stop(): a run in progress ends after its current table.
      if (loop.stopping) break
      const started = Date.now()
      await vacuum(table.name)
      done.push(table.name)
      log.info({ table: table.name, dead: table.dead, ms: Date.now() - started }, 'vacuum: table vacuumed')
    }
    return done
  }

  /**
   * VACUUM runs outside any transaction, so it cannot lift the pool's statement timeout with SET
   * LOCAL: a connection of its own sets it for the session, and puts it back before the pool reuses it.
   */
  async function vacuum(name: string) {
    const session = await sql.reserve()
    try {
      await session`set statement_timeout = 0`
      // The name is the catalog's own, quoted by format(%I): nothing a caller wrote.
      await session.unsafe(`vacuum (skip_locked, analyze) ${name}`)
    } finally {
      await session`reset statement_timeout`.catch(() => {}) // a broken connection is not reused
      session.release()
    }
  }

  const loop = periodically(runOnce, {
    intervalMs,
    onError: (err) => log.warn({ err: toSafeError(err) }, 'vacuum: failed; tried again later'),
  })

  return { runOnce, start: loop.start, stop: loop.stop }
}

export type VacuumKeeper = ReturnType<typeof createVacuumKeeper>
