import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { WebSocketServer } from 'ws'
import { freshDatabase } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { freePort, startService } from './support/service.ts'
import { waitUntil } from './support/process.ts'

/** A WebSocket server standing in for the Stately inspector receives whole flows, secret-free. */

const db = await freshDatabase()
t.teardown(db.drop)

interface Inspection {
  type: string
  sessionId: string
  event?: { type: string }
  snapshot?: { value: unknown; context: Record<string, unknown> }
}

async function fakeInspector(t: { teardown(fn: () => unknown): void }) {
  const port = await freePort()
  const server = new WebSocketServer({ port, host: '127.0.0.1' })
  const received: Inspection[] = []
  const raw: string[] = []
  server.on('connection', (socket) => socket.on('message', (data) => {
    raw.push(String(data))
    received.push(JSON.parse(String(data)) as Inspection)
  }))
  t.teardown(() => new Promise((r) => server.close(r)))
  return { url: `ws://127.0.0.1:${port}`, received, raw }
}

t.test('INSPECT: a whole flow under one stable actor, no secret', async (t) => {
  const inspector = await fakeInspector(t)
  const service = await startService(t, { db, env: { INSPECT: inspector.url } })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const id = await owner.installationId()
  const back = await owner.approve()
  await owner.callback(back)
  await service.api('POST', `/api/installations/${id}/finish`)
  await waitUntil('the inspector has the Finished snapshot', () =>
    inspector.received.some((e) => e.type === '@xstate.snapshot' && e.snapshot?.value === 'Finished'))

  const actorIds = new Set(inspector.received.map((e) => e.sessionId))
  t.same([...actorIds], [`installation:${id}`], 'everything arrives under one actor id, named after the installation')
  t.equal(inspector.received.filter((e) => e.type === '@xstate.actor').length, 1, 'announced once, not per request')
  const events = inspector.received.filter((e) => e.type === '@xstate.event').map((e) => e.event!.type)
  t.same(events, [
    'xstate.init', 'INSTALLER_REDIRECTED', 'CALLBACK', 'xstate.done.actor.exchangeCode', 'BROWSER_SENT_ON', 'FINISH', 'xstate.done.actor.finishSetup',
  ], 'every event of the flow, in order')
  const values = inspector.received.filter((e) => e.type === '@xstate.snapshot').map((e) => JSON.stringify(e.snapshot!.value))
  t.same(values, ['"AppUrlHit"', '"Authorizing"', '"CodeReceived"', '"Tokened"', '{"SetupIncomplete":"waiting"}', '{"SetupIncomplete":"finishing"}', '"Finished"'], 'and a snapshot after each')

  const everything = inspector.raw.join('\n')
  const secrets = [service.wix.appSecret, back.searchParams.get('code')!, owner.state, ...service.wix.refreshTokens.keys(),
    ...service.wix.requests.map((r) => String(r.headers.authorization ?? '')).filter(Boolean)]
  t.ok(secrets.length >= 5, `checked ${secrets.length} secrets`)
  for (const s of secrets) t.notOk(everything.includes(s), 'no secret reaches the inspector')

  await t.test('npm run inspect replays the stored history under the same actor', async (t) => {
    const replayTo = await fakeInspector(t)
    const run = promisify(execFile)
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/inspect.ts', back.searchParams.get('instanceId')!], {
      env: { ...process.env, DATABASE_URL: db.url, INSPECT: replayTo.url },
    })
    t.match(stdout, `replayed 7 events of installation ${id}`, 'it says what it replayed')
    t.same([...new Set(replayTo.received.map((e) => e.sessionId))], [`installation:${id}`], 'under the same actor id')
    t.same(replayTo.received.filter((e) => e.type === '@xstate.event').map((e) => e.event!.type), events, 'the same events')
    t.same(replayTo.received.filter((e) => e.type === '@xstate.snapshot').map((e) => JSON.stringify(e.snapshot!.value)), values, 'recomputing the same states')
    for (const s of secrets) t.notOk(replayTo.raw.join('\n').includes(s), 'and no secret')

    const missing = await run(process.execPath, ['--import', 'tsx', 'scripts/inspect.ts', 'nope'], { env: { ...process.env, DATABASE_URL: db.url, INSPECT: replayTo.url } }).catch((e) => e)
    t.equal(missing.code, 1, 'an unknown installation exits 1')
    t.equal(missing.stderr.trim(), 'inspect: no installation nope', 'with one line that says so')
  })
})
