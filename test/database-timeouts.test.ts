import { randomBytes } from 'node:crypto'
import t from 'tap'
import { connect, isTransientDatabaseError, PG } from '../src/db/connect.ts'
import { migrate } from '../src/db/migrate.ts'
import { needsRealPostgres, serverUrl } from './support/database.ts'
import { waitUntil } from './support/process.ts'

/**
 * The service's connections carry a statement deadline and a lock timeout, so a hung statement or
 * a row held by someone else's open transaction never holds a connection for ever; migrations,
 * which wait for one another and may build indexes for minutes, lift them for themselves.
 */

const MIGRATION_LOCK = 7_406_151_001

t.test('database timeouts', { skip: needsRealPostgres('sets server-side timeouts, and holds locks from another session') }, async (t) => {
  const server = serverUrl()!
  const admin = connect(server, { max: 1 })
  const name = `wie_timeouts_${randomBytes(4).toString('hex')}`
  await admin.unsafe(`create database ${name}`)
  const url = Object.assign(new URL(server), { pathname: `/${name}` }).toString()
  const pools: ReturnType<typeof connect>[] = []
  const pool = (opts: Parameters<typeof connect>[1] = {}) => {
    const sql = connect(url, { max: 2, ...opts })
    pools.push(sql)
    return sql
  }
  t.teardown(async () => {
    for (const sql of pools) await sql.end({ timeout: 1 })
    await admin.unsafe(`drop database if exists ${name} with (force)`)
    await admin.end({ timeout: 1 })
  })

  await t.test('every connection has a one-minute statement deadline and a 5 s lock timeout', async (t) => {
    const sql = pool()
    const [row] = await sql<{ statement: string; lock: string }[]>`
      select current_setting('statement_timeout') as statement, current_setting('lock_timeout') as lock`
    t.same(row, { statement: '1min', lock: '5s' }, 'as the server reports them')
  })

  await t.test('a statement past its deadline is ended by the server, as a blip', async (t) => {
    const sql = pool({ statementTimeoutMs: 200 })
    const err = await sql`select pg_sleep(30)`.then(() => undefined, (e: { code?: string }) => e)
    t.equal(err?.code, PG.QUERY_CANCELED, 'cancelled by statement_timeout')
    t.ok(isTransientDatabaseError(err), 'which callers retry')
    t.same(await sql`select 1 as one`, [{ one: 1 }], 'and the connection serves the next statement')
  })

  await t.test("a statement behind another session's row lock gives up with 55P03, as a blip", async (t) => {
    const sql = pool({ lockTimeoutMs: 200 })
    await sql`create table if not exists held (id int primary key, n int)`
    await sql`insert into held values (1, 0) on conflict do nothing`
    const other = pool({ lockTimeoutMs: 0 })
    const session = await other.reserve()
    await session`begin`
    await session`select 1 from held where id = 1 for update`
    t.teardown(async () => {
      await session`rollback`
      session.release()
    })
    const err = await sql`update held set n = n + 1 where id = 1`.then(() => undefined, (e: { code?: string }) => e)
    t.equal(err?.code, PG.LOCK_NOT_AVAILABLE, 'lock_not_available')
    t.ok(isTransientDatabaseError(err), 'which callers retry')
  })

  await t.test("migrations wait for another instance's migration past the lock timeout, and apply", async (t) => {
    const sql = pool({ lockTimeoutMs: 100 })
    const other = pool({ lockTimeoutMs: 0 })
    const session = await other.reserve()
    await session`begin`
    await session`select pg_advisory_xact_lock(${MIGRATION_LOCK})`
    const migrating = migrate(sql).then(() => 'applied', (e: { code?: string; message?: string }) => e.code ?? e.message)
    await waitUntil('the migration waits for the lock', async () => (await admin`
      select 1 from pg_locks l join pg_stat_activity a using (pid)
      where l.locktype = 'advisory' and not l.granted and a.datname = ${name}`).length === 1)
    // Longer than the pool's lock timeout: a migration bound by it would give up now.
    await session`select pg_sleep(0.5)`
    await session`commit`
    session.release()
    t.equal(await migrating, 'applied', 'the migration ran once the lock was free')
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from wix_engine.migrations`
    t.ok(row!.n > 0, 'and recorded its steps')
  })
})
