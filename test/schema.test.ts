import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { migrate, migrateEngine } from '../src/db/migrate.ts'
import { dumpSchema } from '../scripts/schema.ts'
import { freshDatabase, serverUrl } from './support/database.ts'

/** The committed schema dump is what the migrations build: schema changes show up in review. */

const hasPgDump = (() => {
  try {
    execFileSync('pg_dump', ['--version'])
    return true
  } catch {
    return false
  }
})()

t.test('migrations/schema.sql matches the migrations', { skip: serverUrl() && hasPgDump ? false : 'needs a real Postgres (TEST_DATABASE_URL) and pg_dump' }, async (t) => {
  const db = await freshDatabase()
  t.teardown(db.drop)
  const committed = readFileSync(new URL('../migrations/schema.sql', import.meta.url), 'utf8')
  t.equal(dumpSchema(db.url), committed, 'the dump of a freshly migrated database equals the committed one (npm run schema:dump)')
})

/** An empty database of its own on the test server, for migrations to start from scratch. */
async function emptyDatabase(t: Test) {
  const server = serverUrl()!
  const name = `wie_schema_${randomBytes(6).toString('hex')}`
  const admin = postgres(server, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database ${name}`)
  const u = new URL(server)
  u.pathname = `/${name}`
  const sql = postgres(u.toString(), { max: 2, onnotice: () => {} })
  t.teardown(async () => {
    await sql.end({ timeout: 1 })
    await admin.unsafe(`drop database if exists ${name} with (force)`)
    await admin.end()
  })
  return { url: u.toString(), sql }
}

const realServer = serverUrl() ? false : 'needs a real Postgres (TEST_DATABASE_URL)'
const legacySchema = readFileSync(new URL('./fixtures/legacy-0.1-schema.sql', import.meta.url), 'utf8')

t.test('a database 0.1.0 built (every table in public) moves into wix_engine and wix_install with its rows', { skip: realServer || (!hasPgDump && 'needs pg_dump') }, async (t) => {
  const { url, sql } = await emptyDatabase(t)
  await sql.unsafe(legacySchema)
  const id = '5b1f6c2e-8a47-4c36-9a8e-2d6f0e1a7b90'
  await sql`insert into public.workflows (id, machine, machine_version, key, state, snapshot, version, created_at, updated_at)
            values (${id}, 'installation', 2, 'inst-1', 'Finished', '{"status":"done","value":"Finished","context":{}}', 7, now(), now())`
  await sql`insert into public.instance_tokens (instance_id, workflow_id, refresh_token, created_at, updated_at)
            values ('inst-1', ${id}, 'v1.k.sealed', now(), now())`

  t.same(await migrate(sql), ['wix_engine/002-timers-in-row.sql', 'wix_install/002-webhook-body.sql', 'wix_install/003-claim-keys.sql'], 'what 0.1.0 had built is not applied again; only what came after it')
  t.equal(dumpSchema(url), readFileSync(new URL('../migrations/schema.sql', import.meta.url), 'utf8'),
    'the moved database has exactly the schema a fresh one gets')
  const [w] = await sql`select key, state from wix_engine.workflows where id = ${id}`
  t.same(w && { ...w }, { key: 'inst-1', state: 'Finished' }, 'the workflow came along')
  const [tok] = await sql`select refresh_token from wix_install.instance_tokens where instance_id = 'inst-1'`
  t.equal(tok?.refresh_token, 'v1.k.sealed', 'so did its tokens')
  const [{ left }] = await sql`select count(*)::int as left from pg_tables where schemaname = 'public'`
  t.equal(left, 0, 'nothing of ours is left in public')
  t.same(await migrate(sql), [], 'migrating again changes nothing')
})

t.test('two instances starting together on a 0.1.0 database move it once, and both start', { skip: realServer }, async (t) => {
  const { sql, url } = await emptyDatabase(t)
  await sql.unsafe(legacySchema)
  const other = postgres(url, { max: 2, onnotice: () => {} })
  t.teardown(() => other.end({ timeout: 1 }))
  const [a, b] = await Promise.all([migrate(sql), migrate(other)])
  // Each set of migrations has its own lock: either instance may apply either set's, never both.
  t.same([...a, ...b].sort(), ['wix_engine/002-timers-in-row.sql', 'wix_install/002-webhook-body.sql', 'wix_install/003-claim-keys.sql'],
    'what came after 0.1.0 is applied once, each migration by one of them')
  const [{ engine, install }] = await sql`
    select (select count(*)::int from pg_tables where schemaname = 'wix_engine') as engine,
           (select count(*)::int from pg_tables where schemaname = 'wix_install') as install`
  t.same({ engine, install }, { engine: 5, install: 6 }, 'each schema holds its tables and its migrations table, once')
})

t.test('a 0.1 database short of its last migration is refused, untouched', { skip: realServer }, async (t) => {
  const { sql } = await emptyDatabase(t)
  await sql.unsafe(legacySchema)
  await sql`delete from public.schema_migrations where id > 5`
  await t.rejects(migrate(sql), /at its migration 5 of 8; run 0\.1\.0's migrate first/)
  const [{ engine }] = await sql`select to_regnamespace('wix_engine') is null as engine`
  t.ok(engine, 'no wix_engine schema was made')
  const [{ n }] = await sql`select count(*)::int as n from pg_tables where schemaname = 'public'`
  t.equal(n, 10, "0.1's ten tables are still where they were")
})

t.test("the host app's own tables of the same names are left alone", { skip: realServer }, async (t) => {
  const { sql } = await emptyDatabase(t)
  // A Rails-style migrations table and the host's own jobs and workflows.
  await sql`create table public.schema_migrations (version text primary key)`
  await sql`insert into public.schema_migrations values ('20240101000000')`
  await sql`create table public.jobs (id serial primary key, queue text)`
  await sql`create table public.workflows (id serial primary key, title text)`
  const applied = await migrate(sql)
  t.same(applied, ['wix_engine/001-engine.sql', 'wix_engine/002-timers-in-row.sql', 'wix_install/001-installation.sql', 'wix_install/002-webhook-body.sql', 'wix_install/003-claim-keys.sql'], 'both sets applied from scratch')
  const [{ version }] = await sql`select version from public.schema_migrations`
  t.equal(version, '20240101000000', "the host's migrations table is untouched")
  const cols = await sql`select column_name from information_schema.columns
                         where table_schema = 'public' and table_name = 'jobs' order by ordinal_position`
  t.same(cols.map((c) => c.column_name), ['id', 'queue'], "the host's jobs table is its own")
  const [{ n }] = await sql`select count(*)::int as n from pg_tables where schemaname = 'wix_engine'`
  t.equal(n, 5, "the engine's four tables and its migrations table are in wix_engine")
})

t.test("the engine's migrations alone build only the engine's schema", { skip: realServer }, async (t) => {
  const { sql } = await emptyDatabase(t)
  t.same(await migrateEngine(sql), ['wix_engine/001-engine.sql', 'wix_engine/002-timers-in-row.sql'])
  const schemas = await sql`select nspname from pg_namespace where nspname like 'wix_%' order by 1`
  t.same(schemas.map((s) => s.nspname), ['wix_engine'], 'no wix_install schema: a library user of createEngine gets only what it uses')
})
