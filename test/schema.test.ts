import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { applyMigrations, ENGINE_MIGRATIONS, migrate, migrateEngine } from '../src/db/migrate.ts'
import { readHistory } from '../src/engine/index.ts'
import { adoptLegacyEffects, claimJobs } from '../src/engine/job-store.ts'
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

/** Every migration as `migrate` names what it applied, in the order it applies them. */
const migrationsOf = (schema: string, dir: string) =>
  readdirSync(new URL(`../migrations/${dir}/`, import.meta.url)).filter((f) => /^\d+-.+\.sql$/.test(f)).sort().map((f) => `${schema}/${f}`)
const ENGINE = migrationsOf('wix_engine', 'engine')
const ALL = [...ENGINE, ...migrationsOf('wix_install', 'installation')]
/** What came after 0.1.0, which had built both sets' first migrations. */
const AFTER_0_1 = ALL.filter((m) => !/\/001-/.test(m))
const legacySchema = readFileSync(new URL('./fixtures/legacy-0.1-schema.sql', import.meta.url), 'utf8')

t.test('a database 0.1.0 built (every table in public) moves into wix_engine and wix_install with its rows', { skip: realServer || (!hasPgDump && 'needs pg_dump') }, async (t) => {
  const { url, sql } = await emptyDatabase(t)
  await sql.unsafe(legacySchema)
  const id = '5b1f6c2e-8a47-4c36-9a8e-2d6f0e1a7b90'
  await sql`insert into public.workflows (id, machine, machine_version, key, state, snapshot, version, created_at, updated_at)
            values (${id}, 'installation', 2, 'inst-1', 'Finished', '{"status":"done","value":"Finished","context":{}}', 7, now(), now())`
  await sql`insert into public.instance_tokens (instance_id, workflow_id, refresh_token, created_at, updated_at)
            values ('inst-1', ${id}, 'v1.k.sealed', now(), now())`

  await sql`insert into public.workflow_history (workflow_id, seq, event_type, event, from_state, to_state, source, at)
            values (${id}, 1, 'xstate.init', '{"type":"xstate.init"}', null, 'AppUrlHit', 'route:app-url', now()),
                   (${id}, 2, 'CALLBACK', '{"type":"CALLBACK","code":"[redacted]"}', 'Authorizing', 'CodeReceived', 'route:redirect', now())`

  t.same(await migrate(sql), AFTER_0_1, 'what 0.1.0 had built is not applied again; only what came after it')
  t.equal(dumpSchema(url), readFileSync(new URL('../migrations/schema.sql', import.meta.url), 'utf8'),
    'the moved database has exactly the schema a fresh one gets')
  const [w] = await sql`select key, state from wix_engine.workflows where id = ${id}`
  t.same(w && { ...w }, { key: 'inst-1', state: 'Finished' }, 'the workflow came along')
  const [tok] = await sql`select refresh_token from wix_install.instance_tokens where instance_id = 'inst-1'`
  t.equal(tok?.refresh_token, 'v1.k.sealed', 'so did its tokens')
  t.match(await readHistory(sql, id), [
    { seq: 1, event_type: 'xstate.init', from_state: null, to_state: 'AppUrlHit', source: 'route:app-url' },
    { seq: 2, event_type: 'CALLBACK', event: { code: '[redacted]' }, from_state: 'Authorizing', to_state: 'CodeReceived' },
  ], 'and its history, event by event')
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
  t.same([...a, ...b].sort(), [...AFTER_0_1].sort(),
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
  t.same(applied, ALL, 'both sets applied from scratch')
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
  t.same(await migrateEngine(sql), ENGINE)
  const schemas = await sql`select nspname from pg_namespace where nspname like 'wix_%' order by 1`
  t.same(schemas.map((s) => s.nspname), ['wix_engine'], 'no wix_install schema: a library user of createEngine gets only what it uses')
})

t.test('a database of one history row per event (0.2) keeps its history, read back event by event', { skip: realServer }, async (t) => {
  const { sql } = await emptyDatabase(t)
  // The engine's migrations as they were before history went one row per write.
  const before = mkdtempSync(join(tmpdir(), 'wie-migrations-'))
  t.teardown(() => rmSync(before, { recursive: true, force: true }))
  for (const f of ['001-engine.sql', '002-timers-in-row.sql']) copyFileSync(new URL(f, ENGINE_MIGRATIONS.dir), join(before, f))
  await applyMigrations(sql, { schema: 'wix_engine', dir: pathToFileURL(`${before}/`) })
  const id = '0c9e4a52-6f1b-4d0e-9b7a-3e5d2c1f0a98'
  await sql`insert into wix_engine.workflows (id, machine, machine_version, state, snapshot, version, created_at, updated_at)
            values (${id}, 'installation', 3, 'CodeReceived', '{"status":"active","value":"CodeReceived","context":{}}', 3, now(), now())`
  await sql`insert into wix_engine.workflow_history (workflow_id, seq, event_type, event, from_state, to_state, source, at)
            values (${id}, 1, 'xstate.init', '{"type":"xstate.init"}', null, 'AppUrlHit', 'route:app-url', now()),
                   (${id}, 2, 'APP_URL_HIT', '{"type":"APP_URL_HIT"}', 'AppUrlHit', 'Authorizing', 'route:app-url', now()),
                   (${id}, 3, 'CALLBACK', '{"type":"CALLBACK","code":"[redacted]"}', 'Authorizing', 'CodeReceived', 'route:redirect', now())`
  const was = await sql`select seq, event_type, event, from_state, to_state, source, at from wix_engine.workflow_history where workflow_id = ${id} order by seq`

  t.same(await migrate(sql), ALL.filter((m) => !/^wix_engine\/00[12]-/.test(m)), 'only what came after it is applied')
  t.same(await readHistory(sql, id), [...was], 'every event reads back as it was: seq, type, event, states, source, time')
  t.same((await sql`select seq, jsonb_array_length(events) as n from wix_engine.workflow_history where workflow_id = ${id} order by seq`).map((r) => [r.seq, r.n]),
    [[1, 1], [2, 1], [3, 1]], 'each as a write of its own, as it was committed')
})

t.test('a database that applied 004 before 003 existed gets 003 in place, with its rows', { skip: realServer || (!hasPgDump && 'needs pg_dump') }, async (t) => {
  const { url, sql } = await emptyDatabase(t)
  // The engine's migrations as they were before 003: 004 (history one row per write) came first.
  const before = mkdtempSync(join(tmpdir(), 'wie-migrations-'))
  t.teardown(() => rmSync(before, { recursive: true, force: true }))
  for (const f of ['001-engine.sql', '002-timers-in-row.sql', '004-history-per-write.sql']) {
    copyFileSync(new URL(f, ENGINE_MIGRATIONS.dir), join(before, f))
  }
  await applyMigrations(sql, { schema: 'wix_engine', dir: pathToFileURL(`${before}/`) })
  const id = '6c2a7d3f-9b58-4d47-8b01-3e7f1f2b8c01'
  const job = '7d3b8e4a-0c69-4e58-9c12-4f802a3c9d12'
  await sql`insert into wix_engine.workflows (id, machine, machine_version, key, state, snapshot, version, created_at, updated_at)
            values (${id}, 'installation', 2, 'inst-2', 'ExchangeFailed', '{"status":"done","value":"ExchangeFailed","context":{}}', 3, now(), now())`
  await sql`insert into wix_engine.workflow_history (workflow_id, seq, events, at)
            values (${id}, 1, '[{"seq":1,"event_type":"xstate.init","event":{},"from_state":null,"to_state":"AppUrlHit","source":"test"}]', now())`
  await sql`insert into wix_engine.jobs (id, workflow_id, kind, name, src, status, attempts, run_at, created_at, updated_at)
            values (${job}, ${id}, 'effect', 'exchangeCode', 'exchangeCode', 'failed', 1, now(), now(), now())`
  await sql`insert into wix_engine.job_attempts (job_id, attempt, workflow_id, outcome, started_at, finished_at)
            values (${job}, 1, ${id}, 'failed', now(), now())`

  const applied = await migrate(sql)
  t.same(applied.filter((m) => m.startsWith('wix_engine/')), ENGINE.filter((m) => !/\/00[124]-/.test(m)),
    "of the engine's, 003 is applied, and those after 004")
  t.equal(dumpSchema(url), readFileSync(new URL('../migrations/schema.sql', import.meta.url), 'utf8'),
    'the database has exactly the schema a fresh one gets')
  const [rows] = await sql`
    select (select count(*)::int from wix_engine.workflow_history where workflow_id = ${id}) as history,
           (select count(*)::int from wix_engine.jobs where workflow_id = ${id}) as jobs,
           (select count(*)::int from wix_engine.job_attempts where job_id = ${job}) as attempts`
  t.same({ ...rows }, { history: 1, jobs: 1, attempts: 1 }, 'its history, job and attempt are kept')
})

t.test("a database whose effects are jobs (before 005) moves its live ones into their workflows' rows, where a claim takes them", { skip: realServer }, async (t) => {
  const { sql } = await emptyDatabase(t)
  const before = mkdtempSync(join(tmpdir(), 'wie-migrations-'))
  t.teardown(() => rmSync(before, { recursive: true, force: true }))
  for (const f of ENGINE.filter((m) => /\/00[1-4]-/.test(m)).map((m) => m.slice('wix_engine/'.length))) {
    copyFileSync(new URL(f, ENGINE_MIGRATIONS.dir), join(before, f))
  }
  await applyMigrations(sql, { schema: 'wix_engine', dir: pathToFileURL(`${before}/`) })
  const [retrying, running, finished] = ['1b6f0e4a-2c3d-4e5f-8a9b-0c1d2e3f4a51', '2c7a1f5b-3d4e-4f6a-9b0c-1d2e3f4a5b62', '3d8b2a6c-4e5f-4a7b-8c1d-2e3f4a5b6c73']
  for (const id of [retrying, running, finished]) {
    await sql`insert into wix_engine.workflows (id, machine, machine_version, state, snapshot, version, created_at, updated_at)
              values (${id}, 'installation', 3, 'CodeReceived', '{"status":"active","value":"CodeReceived","context":{}}', 3, now(), now())`
  }
  const job = { retrying: '4e9c3b7d-5f6a-4b8c-9d2e-3f4a5b6c7d84', running: '5f0d4c8e-6a7b-4c9d-8e3f-4a5b6c7d8e95', finished: '6a1e5d9f-7b8c-4d0e-9f4a-5b6c7d8e9fa6' }
  await sql`insert into wix_engine.jobs (id, workflow_id, kind, name, src, payload, status, attempts, run_at, lease_owner, lease_until, created_at, updated_at)
            values (${job.retrying}, ${retrying}, 'effect', 'exchangeCode', 'exchangeCode', 'sealed-1', 'pending', 1, now() - interval '1 minute', null, null, now(), now()),
                   (${job.running}, ${running}, 'effect', 'exchangeCode', 'exchangeCode', 'sealed-2', 'running', 1, now(), 'old-instance', now() + interval '1 hour', now(), now()),
                   (${job.finished}, ${finished}, 'effect', 'finishSetup', 'finishSetup', null, 'done', 2, now(), null, null, now(), now())`
  await sql`insert into wix_engine.job_attempts (job_id, attempt, workflow_id, outcome, started_at, finished_at, error)
            values (${job.retrying}, 1, ${retrying}, 'retry', now(), now(), '{"code":"WIX_UNAVAILABLE"}'),
                   (${job.finished}, 1, ${finished}, 'retry', now(), now(), '{"code":"WIX_UNAVAILABLE"}')`

  t.same((await migrate(sql)).filter((m) => m.startsWith('wix_engine/')), ENGINE.filter((m) => !/\/00[1-4]-/.test(m)), 'what came after 004 is applied')
  const effects = await sql`select id, effects, effect_due_at is not null as due from wix_engine.workflows order by id`
  t.match(effects.map((r) => [r.id, r.effects, r.due]), [
    [retrying, [{ id: job.retrying, name: 'exchangeCode', src: 'exchangeCode', payload: 'sealed-1', status: 'pending', attempts: 1, owner: null }], true],
    [running, [{ id: job.running, name: 'exchangeCode', payload: 'sealed-2', status: 'running', attempts: 1, owner: 'old-instance' }], true],
    [finished, [], false],
  ], 'each live effect is in its workflow\'s row, as it was: payload, status, attempts, its lease')
  t.same((await sql`select id, status from wix_engine.jobs`).map((r) => [r.id, r.status]), [[job.finished, 'done']], 'and no longer in jobs; the ended one stays')
  t.same((await sql`select job_id, name from wix_engine.job_attempts order by job_id`).map((r) => [r.job_id, r.name]),
    [[job.retrying, 'exchangeCode'], [job.finished, 'finishSetup']], 'every attempt names its effect')

  const claimed = await claimJobs(sql, 'new-instance', new Date(), 5_000, { effects: 10, timers: 10 })
  t.same(claimed.map((c) => [c.id, c.workflow_id, c.kind, c.payload, c.attempts, c.lease_owner]),
    [[job.retrying, retrying, 'effect', 'sealed-1', 2, 'new-instance']], 'the due one is claimed from its row, its attempts counted on; the leased one is left to its owner')

  // A rolling upgrade: an instance still on the engine from before 005 writes its effects to jobs,
  // and hands one back as it stops (pending); another one's process died (a lease run out).
  const [handedBack, diedWith] = ['7b2f6e0a-8c9d-4e1f-a05b-6c7d8e9fa0b7', '8c3a7f1b-9d0e-4f2a-b16c-7d8e9fa0b1c8']
  await sql`insert into wix_engine.jobs (id, workflow_id, kind, name, src, payload, status, attempts, run_at, lease_owner, lease_until, created_at, updated_at)
            values (${handedBack}, ${finished}, 'effect', 'finishSetup', 'finishSetup', 'sealed-3', 'pending', 0, now() - interval '1 second', null, null, now(), now()),
                   (${diedWith}, ${running}, 'effect', 'confirmInstall', 'confirmInstall', 'sealed-4', 'running', 1, now(), 'old-instance', now() - interval '1 second', now(), now())`
  t.equal(await adoptLegacyEffects(sql, new Date(), 10), 2, 'the new engine adopts both into their rows')
  t.same(await sql`select id from wix_engine.jobs where kind = 'effect' and status in ('pending', 'running')`, [], 'none is left in jobs')
  const adopted = await claimJobs(sql, 'new-instance', new Date(), 5_000, { effects: 10, timers: 0 })
  t.same(adopted.map((c) => [c.id, c.workflow_id, c.payload, c.attempts]).sort(),
    [[handedBack, finished, 'sealed-3', 1], [diedWith, running, 'sealed-4', 2]].sort(), 'and claims them from there, as its own')
})
