import t from 'tap'
import { createVacuumKeeper } from '../src/db/vacuum.ts'
import { freshDatabase, needsRealPostgres } from './support/database.ts'

/**
 * A Postgres server with autovacuum off (this project's CI runs one) never reclaims a dead row:
 * the service then vacuums its own tables. Dead rows are made for real, and counted by Postgres.
 */

t.test('with the server\'s autovacuum off, the service vacuums its own tables', { skip: needsRealPostgres('a server whose settings are its own') }, async (t) => {
  const db = await freshDatabase()
  t.teardown(db.drop)
  const [setting] = await db.sql<{ v: string }[]>`select current_setting('autovacuum') as v`
  if (setting!.v === 'on') {
    t.comment('this server vacuums by itself (autovacuum = on): nothing for the service to do')
    return t.end()
  }

  // 2,000 workflows, each updated twice: 4,000 dead row versions, as 400 flows would leave.
  await db.sql`
    insert into wix_engine.workflows (id, machine, machine_version, key, state, reason, snapshot, version, created_at, updated_at)
    select gen_random_uuid(), 'm', 1, null, 'a', null, '{}'::jsonb, 1, now(), now() from generate_series(1, 2000)`
  await db.sql`update wix_engine.workflows set state = 'b', version = 2`
  await db.sql`update wix_engine.workflows set state = 'c', version = 3`
  const stats = async () => {
    const conn = await db.sql.reserve()
    try {
      // Statistics reach the shared views when a backend flushes them; ask this one to, then look.
      await conn`select pg_stat_force_next_flush()`
      await conn`select 1`
      const [row] = await conn<{ dead: number; vacuums: number }[]>`
        select n_dead_tup::int as dead, vacuum_count::int as vacuums from pg_stat_user_tables
        where schemaname = 'wix_engine' and relname = 'workflows'`
      return row!
    } finally {
      conn.release()
    }
  }
  const until = async (what: string, ok: (s: { dead: number; vacuums: number }) => boolean) => {
    for (let i = 0; i < 50; i++) {
      const s = await stats()
      if (ok(s)) return s
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`statistics never showed ${what}`)
  }
  const before = await until('the dead rows', (s) => s.dead >= 4_000)
  t.equal(before.vacuums, 0, 'nothing vacuumed them: the server leaves them be')

  const warnings: string[] = []
  const keeper = createVacuumKeeper({
    sql: db.sql, schemas: ['wix_engine', 'wix_install'],
    log: { info: () => {}, warn: (_o, m) => void warnings.push(m) },
  })
  // Another instance vacuuming the table holds its lock: this one must pass it by, not queue.
  const other = await db.sql.reserve()
  await other`begin`
  await other`lock table wix_engine.workflows in share update exclusive mode`
  let timer: ReturnType<typeof setTimeout> | undefined
  const blocked = await Promise.race([
    keeper.runOnce().then(() => false),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 5_000))),
  ])
  clearTimeout(timer)
  t.equal(blocked, false, 'a table another vacuum holds is passed by at once (SKIP_LOCKED), not waited for')
  t.equal((await stats()).vacuums, 0, 'and left to that other vacuum')
  await other`rollback`
  other.release()

  const vacuumed = await keeper.runOnce()
  t.ok(vacuumed.includes('wix_engine.workflows'), 'the table full of dead rows is vacuumed')
  t.notOk(vacuumed.includes('wix_engine.workflow_history'), 'a table without dead rows is not')
  const after = await until('the vacuum', (s) => s.vacuums > 0)
  t.equal(after.dead, 0, 'its dead rows are gone')
  t.match(warnings, [/autovacuum is off/], 'the service said, once, that the server does not vacuum')
  t.same(await keeper.runOnce(), [], 'a second look finds nothing due')
  t.equal(warnings.length, 1, 'and does not repeat the warning')
})
