import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import t from 'tap'
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
