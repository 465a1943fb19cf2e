import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { builtEntry } from './support/build.ts'
import { freshDatabase } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { startService } from './support/service.ts'

/** The command line: --help, migrate, and read-only installations list / show for support. */

const db = await freshDatabase()
t.teardown(db.drop)
const run = promisify(execFile)

async function cli(args: string[], env: Record<string, string> = { DATABASE_URL: db.url }) {
  try {
    const { stdout, stderr } = await run(process.execPath, [await builtEntry('src/cli.ts'), ...args], { env: { ...process.env, ...env } })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

t.test('help, migrate, list and show', async (t) => {
  const help = await cli(['--help'])
  t.equal(help.code, 0, '--help succeeds')
  for (const word of ['serve', 'migrate', 'installations list', 'installations show']) t.match(help.stdout, word, `and describes ${word}`)

  const migrated = await cli(['migrate'])
  t.equal(migrated.code, 0, 'migrate succeeds')
  t.match(migrated.stdout, 'database is up to date', 'on a migrated database it changes nothing')

  const service = await startService(t, { db })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const id = await owner.installationId()
  const back = await owner.approve()
  await owner.callback(back)
  const instanceId = back.searchParams.get('instanceId')!
  await service.app.installFlow.begin('platform')

  const listed = await cli(['installations', 'list'])
  t.equal(listed.code, 0, 'list succeeds')
  t.match(listed.stdout, id, 'and shows the installation')
  t.match(listed.stdout, '2 installation(s)', 'and counts them')
  const filtered = await cli(['installations', 'list', '--state', 'SetupIncomplete', '--json'])
  t.same(JSON.parse(filtered.stdout).items.map((i: { id: string }) => i.id), [id], '--state filters, --json prints JSON')
  const paged = JSON.parse((await cli(['installations', 'list', '--limit', '1', '--json'])).stdout)
  t.ok(paged.nextCursor, 'a cursor when there is more')
  const second = JSON.parse((await cli(['installations', 'list', '--limit', '1', '--json', '--cursor', paged.nextCursor])).stdout)
  t.not(second.items[0].id, paged.items[0].id, 'which leads to the next page')

  const shown = await cli(['installations', 'show', instanceId])
  t.equal(shown.code, 0, 'show by instanceId succeeds')
  t.match(shown.stdout, `installation ${id}`, 'and names the installation')
  t.match(shown.stdout, /CodeReceived\s+→ Tokened/, 'with its history')
  t.notMatch(shown.stdout + listed.stdout, back.searchParams.get('code')!, 'and never a code')

  const missing = await cli(['installations', 'show', 'nope'])
  t.equal(missing.code, 2, 'an unknown installation exits non-zero')
  t.equal(missing.stderr.trim().split('\n').length, 1, 'with one line')
  t.match(missing.stderr, 'no installation nope', 'that says so')
  const unknown = await cli(['frobnicate'])
  t.match(unknown.stderr, /unknown command "frobnicate"/, 'an unknown command is named')
})
