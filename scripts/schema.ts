// npm run schema:dump: writes migrations/schema.sql, the schema the migrations build, as
// pg_dump --schema-only prints it, so review shows every schema change as a diff.
// Needs a Postgres server (TEST_DATABASE_URL, else DATABASE_URL) and pg_dump on PATH.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { freshDatabase } from '../test/support/database.ts'

/** pg_dump's output without what varies by machine and version: comments, SETs, blank runs. */
export function normaliseDump(dump: string): string {
  return dump
    .split('\n')
    .filter((line) => !line.startsWith('--') && !/^SET |^SELECT pg_catalog\.set_config|^\\(un)?restrict /.test(line))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim() + '\n'
}

export function dumpSchema(url: string): string {
  return normaliseDump(execFileSync('pg_dump', ['--schema-only', '--no-owner', '--no-privileges', url], { encoding: 'utf8' }))
}

if (process.argv[1]?.endsWith('schema.ts')) {
  const db = await freshDatabase()
  try {
    writeFileSync(new URL('../migrations/schema.sql', import.meta.url), dumpSchema(db.url))
    console.log('wrote migrations/schema.sql')
  } finally {
    await db.drop()
  }
}
