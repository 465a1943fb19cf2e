import { readdir, readFile } from 'node:fs/promises'
import type { Sql, TransactionSql } from 'postgres'
import { PG, unbounded } from './connect.ts'

/**
 * Two sets of forward-only migrations, each in a Postgres schema of its own so neither meets the
 * host app's tables: the engine's (`wix_engine`: workflows, history, jobs) and the installation
 * flow's (`wix_install`: tokens, webhook deliveries, maintenance, console sessions). Each schema
 * records what it applied in its own `migrations` table. The engine's set goes first: the
 * installation's tables refer to its workflows.
 */
export interface MigrationSet {
  /** The schema the set's tables and its `migrations` table live in. */
  schema: string
  dir: URL
}

export const ENGINE_MIGRATIONS: MigrationSet = {
  schema: 'wix_engine',
  dir: new URL('../../migrations/engine/', import.meta.url),
}
export const INSTALLATION_MIGRATIONS: MigrationSet = {
  schema: 'wix_install',
  dir: new URL('../../migrations/installation/', import.meta.url),
}

/** Any constant works: it only has to be the same in every process of this service. */
const MIGRATION_LOCK = 7_406_151_001

export interface Migration {
  id: number
  name: string
  sql: string
}

export async function loadMigrations(set: MigrationSet): Promise<Migration[]> {
  const files = (await readdir(set.dir)).filter((f) => /^\d+-.+\.sql$/.test(f)).sort()
  return Promise.all(
    files.map(async (name) => ({
      id: Number.parseInt(name, 10),
      name,
      sql: await readFile(new URL(name, set.dir), 'utf8'),
    })),
  )
}

type Log = { info(obj: object, msg?: string): void }

/**
 * Applies a set's pending migrations, each in its own transaction under an advisory lock, so
 * instances starting together apply each exactly once. Refuses a schema newer than this code.
 * Returns what it applied, as `<schema>/<file>`.
 */
export async function applyMigrations(sql: Sql, set: MigrationSet, log?: Log): Promise<string[]> {
  const migrations = await loadMigrations(set)
  const known = migrations.at(-1)?.id ?? 0
  const table = sql(`${set.schema}.migrations`)
  // Every start comes here, and usually all is applied: that is read outside any transaction.
  // postgres.js 3.4 cannot lose a transaction's connection without ending the process (sql.begin
  // then sends its rollback on the closed connection: an uncaught TypeError), so a start that
  // meets a Postgres restart must not be in one unless it has a migration to apply.
  if (await upToDate(sql, set.schema, migrations)) return []
  await sql.begin(async (tx) => {
    await unbounded(tx)
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`
    await tx`create schema if not exists ${sql(set.schema)}`
    await tx`create table if not exists ${table} (
      id integer primary key, name text not null, applied_at timestamptz not null default now())`
  })
  const applied: string[] = []
  for (const m of migrations) {
    await sql.begin(async (tx) => {
      await unbounded(tx)
      await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`
      const [{ newest }] = await tx<{ newest: number | null }[]>`select max(id) as newest from ${table}`
      if ((newest ?? 0) > known) {
        throw new Error(`database schema ${set.schema} is at migration ${newest}, newer than this code knows (${known}); deploy the newer code`)
      }
      const [done] = await tx`select 1 from ${table} where id = ${m.id}`
      if (done) return
      await tx.unsafe(m.sql)
      await tx`insert into ${table} (id, name) values (${m.id}, ${m.name})`
      applied.push(`${set.schema}/${m.name}`)
      log?.info({ migration: `${set.schema}/${m.name}` }, 'migration applied')
    })
  }
  return applied
}

/**
 * True when every one of `migrations` is recorded as applied in `schema`, read without a lock or
 * a transaction. Anything else (no table yet, one missing, one newer than this code) goes the
 * way under the lock, which decides (and refuses a newer schema) as before.
 */
async function upToDate(sql: Sql, schema: string, migrations: Migration[]): Promise<boolean> {
  const [{ present }] = await sql<{ present: boolean }[]>`select to_regclass(${`${schema}.migrations`}) is not null as present`
  if (!present) return false
  const applied = new Set((await sql<{ id: number }[]>`select id from ${sql(`${schema}.migrations`)}`).map((r) => r.id))
  const known = migrations.at(-1)?.id ?? 0
  return migrations.every((m) => applied.has(m.id)) && [...applied].every((id) => id <= known)
}

/** The engine's tables only: what a library user of `createEngine` needs. */
export const migrateEngine = (sql: Sql, log?: Log) => applyMigrations(sql, ENGINE_MIGRATIONS, log)

/** Everything the installation service needs: the engine's tables, then its own. */
export async function migrate(sql: Sql, log?: Log): Promise<string[]> {
  await adoptLegacyLayout(sql, log)
  return [...(await migrateEngine(sql, log)), ...(await applyMigrations(sql, INSTALLATION_MIGRATIONS, log))]
}

/** 0.1.0 kept every table in `public`, with one `schema_migrations` table numbering 1 to 8. */
const LEGACY_LAST = 8
const LEGACY_TABLES = {
  wix_engine: ['workflows', 'workflow_history', 'jobs', 'job_attempts'],
  wix_install: ['instance_tokens', 'exchanged_tokens', 'webhook_deliveries', 'maintenance', 'console_sessions'],
}

/**
 * Moves a database 0.1.0 built into the two schemas, in one transaction: the tables (with their
 * rows, indexes and keys) change schema, and each schema records its first migration as applied,
 * since 0.1.0's eight built exactly what it holds. Only our own `schema_migrations` is taken for
 * 0.1.0's: one with our first migration's name in it (a host app may have a table of that name).
 */
async function adoptLegacyLayout(sql: Sql, log?: Log) {
  /** 0.1.0's last migration id, or null when this is not a database 0.1.0 built (or it moved). */
  const ours = async (q: Sql | TransactionSql): Promise<number | null> => {
    const [found] = await q<{ legacy: boolean }[]>`
      select exists (
        select 1 from information_schema.columns
        where table_schema = 'public' and table_name = 'schema_migrations' and column_name = 'name'
      ) and to_regclass('public.workflows') is not null and to_regclass('wix_engine.workflows') is null as legacy`
    if (!found!.legacy) return null
    // Outside the lock, another instance may move the tables (and drop this one) in between.
    const rows = await q<{ first: boolean; newest: number | null }[]>`
      select bool_or(name = '001-engine.sql') as first, max(id) as newest from public.schema_migrations`
      .catch((err: { code?: string }) => {
        if (err.code === PG.UNDEFINED_TABLE) return [] as { first: boolean; newest: number | null }[]
        throw err
      })
    return rows[0]?.first ? rows[0].newest : null
  }
  if ((await ours(sql)) === null) return
  await sql.begin(async (tx) => {
    await unbounded(tx)
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`
    const newest = await ours(tx)
    if (newest === null) return // another instance moved it meanwhile
    if (newest !== LEGACY_LAST) {
      throw new Error(`database was built by wix-install-engine 0.1 and is at its migration ${newest} of ${LEGACY_LAST}; run 0.1.0's migrate first, then this version`)
    }
    for (const [schema, tables] of Object.entries(LEGACY_TABLES)) {
      await tx`create schema ${tx(schema)}`
      for (const table of tables) await tx`alter table ${tx(`public.${table}`)} set schema ${tx(schema)}`
      await tx`create table ${tx(`${schema}.migrations`)} (
        id integer primary key, name text not null, applied_at timestamptz not null default now())`
    }
    await tx`insert into wix_engine.migrations (id, name) values (1, '001-engine.sql')`
    await tx`insert into wix_install.migrations (id, name) values (1, '001-installation.sql')`
    await tx`drop table public.schema_migrations`
    log?.info({ from: 'public', to: Object.keys(LEGACY_TABLES) }, 'moved the 0.1.0 tables into their own schemas')
  })
}
