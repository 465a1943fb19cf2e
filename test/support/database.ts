import { createHash, randomBytes } from 'node:crypto'
import postgres, { type Sql } from 'postgres'
import { connect } from '../../src/db/connect.ts'
import { loadMigrations, migrate } from '../../src/db/migrate.ts'

/** The server tests run on: TEST_DATABASE_URL, else DATABASE_URL, else the local Postgres. */
export const serverUrl = () =>
  process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

const withDatabase = (url: string, name: string) => {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

/** Named after the migrations, so a changed schema gets a new template. */
async function templateName() {
  const hash = createHash('sha256')
  for (const m of await loadMigrations()) hash.update(m.name).update(m.sql)
  return `wie_template_${hash.digest('hex').slice(0, 12)}`
}

/** Builds the migrated template once per schema; test files clone it in milliseconds. */
export async function ensureTemplate(): Promise<string> {
  const name = await templateName()
  const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} })
  try {
    await admin`select pg_advisory_lock(7406151002)`
    const [exists] = await admin`select 1 from pg_database where datname = ${name}`
    if (!exists) {
      await admin.unsafe(`create database ${name}`)
      const sql = connect(withDatabase(serverUrl(), name), { max: 1 })
      await migrate(sql)
      await sql.end()
      await admin.unsafe(`alter database ${name} with is_template true`)
    }
    await admin`select pg_advisory_unlock(7406151002)`
  } finally {
    await admin.end()
  }
  return name
}

export interface TestDatabase {
  url: string
  sql: Sql
  drop(): Promise<void>
}

/** A fresh, migrated database of its own for one test file; dropped by `drop()`. */
export async function freshDatabase(): Promise<TestDatabase> {
  const template = await ensureTemplate()
  const name = `wie_test_${randomBytes(6).toString('hex')}`
  const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database ${name} template ${template}`)
  const url = withDatabase(serverUrl(), name)
  const sql = connect(url, { max: 10 })
  return {
    url,
    sql,
    async drop() {
      await sql.end({ timeout: 1 })
      await admin.unsafe(`drop database if exists ${name} with (force)`)
      await admin.end()
    },
  }
}
