import { parseArgs } from 'node:util'
import type { Sql } from 'postgres'
import { connect } from './db/connect.ts'
import { migrate } from './db/migrate.ts'
import { readHistory, toWorkflow } from './engine/index.ts'
import { decodeCursor, encodeCursor } from './installation/admin.ts'
import { findInstallation, listInstallations } from './installation/queries.ts'
import { CLAIM_NOTE, historyView, installationView } from './installation/view.ts'

const HELP = `Usage: wix-install-engine <command> [options]

Commands:
  serve                                 run the service (what npm start does)
  migrate                               apply pending database migrations, then exit
  installations list [filters]          installations, newest-updated first (read-only)
      --state <State>  --reason <reason>  --instance-id <id>  --limit <1-200>  --cursor <c>
  installations show <id|instanceId>    one installation and its whole history (read-only)

Options:
  --json      print JSON instead of text (list, show)
  --help      this text

The database is DATABASE_URL, else the embedded one under DATA_DIR (./.data), which only one
process may open: stop the service first, or point DATABASE_URL at a real Postgres.`

class UsageError extends Error {}

async function openDatabase(): Promise<{ sql: Sql; close(): Promise<void> }> {
  const url = process.env.DATABASE_URL
  if (url) {
    const sql = connect(url, { max: 2 })
    return { sql, close: () => sql.end({ timeout: 5 }) }
  }
  const { startEmbeddedPostgres } = await import('./db/embedded.ts')
  const embedded = await startEmbeddedPostgres({ dataDir: process.env.DATA_DIR || './.data' })
  return { sql: embedded.connect(), close: () => embedded.close() }
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length))

async function list(sql: Sql, values: Record<string, unknown>, json: boolean) {
  const limit = Number(values.limit ?? 50)
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new UsageError('--limit must be a whole number from 1 to 200')
  const rows = await listInstallations(sql, {
    state: values.state as string | undefined,
    reason: values.reason as string | undefined,
    instanceId: values['instance-id'] as string | undefined,
    after: values.cursor ? decodeCursor(values.cursor as string, 'updated') : undefined,
    limit: limit + 1,
  })
  const items = rows.slice(0, limit).map((r) => installationView(toWorkflow(r)))
  const next = rows.length > limit ? encodeCursor('updated', items.at(-1)!) : null
  if (json) return console.log(JSON.stringify({ items, nextCursor: next }, null, 2))
  console.log([pad('id', 37), pad('instanceId', 37), pad('state', 18), pad('reason', 20), 'updatedAt'].join(''))
  for (const i of items) {
    // A claim is shown as one: the claimed id with a `?` (claimed by its Redirect URL, not confirmed by Wix).
    const instance = i.instanceId ?? (i.claimedInstanceId ? `${i.claimedInstanceId}?` : '-')
    console.log([pad(i.id, 37), pad(instance, 37), pad(i.state, 18), pad(i.failure?.reason ?? '-', 20), i.updatedAt.toISOString()].join(''))
  }
  if (items.some((i) => !i.instanceVerified && i.claimedInstanceId)) console.log(`id?: ${CLAIM_NOTE}`)
  console.log(`${items.length} installation(s)${next ? `; more with --cursor ${next}` : ''}`)
}

async function show(sql: Sql, ref: string | undefined, json: boolean) {
  if (!ref) throw new UsageError('installations show needs an installation id or instanceId')
  const row = await findInstallation(sql, ref)
  if (!row) throw new UsageError(`no installation ${ref}`)
  const installation = installationView(toWorkflow(row))
  const history = historyView(await readHistory(sql, row.id))
  if (json) return console.log(JSON.stringify({ ...installation, history }, null, 2))
  console.log(`installation ${installation.id}`)
  console.log(`  instanceId  ${installation.instanceId ?? '-'}`)
  if (!installation.instanceVerified && installation.claimedInstanceId) {
    console.log(`  claimed     ${installation.claimedInstanceId} (${installation.instanceNote})`)
  }
  if (installation.cloned) console.log(`  cloned      ${installation.cloned}`)
  if (installation.supersededBy) console.log(`  superseded  by ${installation.supersededBy}`)
  console.log(`  state       ${installation.statePath}`)
  if (installation.failure) console.log(`  failure     ${installation.failure.reason}: ${installation.failure.detail}`)
  if (installation.lastError) console.log(`  lastError   ${installation.lastError.code}: ${installation.lastError.message}`)
  console.log(`  created     ${installation.createdAt.toISOString()}`)
  console.log(`  updated     ${installation.updatedAt.toISOString()}`)
  console.log('  history')
  for (const h of history) {
    console.log(`    ${String(h.seq).padStart(3)}  ${h.at.toISOString()}  ${pad(h.from ?? '(start)', 26)} → ${pad(h.to, 26)} ${h.event}  [${h.source}]`)
  }
}

async function main(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean' },
      json: { type: 'boolean' },
      state: { type: 'string' },
      reason: { type: 'string' },
      'instance-id': { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
    },
  })
  const [command, sub, arg] = positionals
  if (values.help || !command) return console.log(HELP)
  if (command === 'serve') return void (await import('./server.ts'))
  if (command !== 'migrate' && !(command === 'installations' && (sub === 'list' || sub === 'show'))) {
    throw new UsageError(`unknown command "${positionals.join(' ')}"; see --help`)
  }
  const db = await openDatabase()
  try {
    if (command === 'migrate') {
      const applied = await migrate(db.sql)
      console.log(applied.length ? `applied migrations ${applied.join(', ')}` : 'database is up to date')
    } else if (sub === 'list') await list(db.sql, values, Boolean(values.json))
    else await show(db.sql, arg, Boolean(values.json))
  } finally {
    await db.close()
  }
}

main(process.argv.slice(2)).catch((err: Error & { code?: string }) => {
  // One line, never a stack, for anything the user can act on.
  const known = err instanceof UsageError || err.code === 'DATA_DIR_LOCKED' || err.code === 'INVALID_CURSOR' || (err as { errno?: unknown }).errno !== undefined
  console.error(`wix-install-engine: ${known ? err.message : `unexpected error: ${err.message}`}`)
  process.exit(err instanceof UsageError ? 2 : 1)
})
