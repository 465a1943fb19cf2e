import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { connect, createServer } from 'node:net'
import { promisify } from 'node:util'
import t from 'tap'
import { request } from 'undici'
import WebSocket, { WebSocketServer } from 'ws'
import { installationMachine } from '../machines/installation.ts'
import { startLocalInspector } from '../src/inspector/local-server.ts'
import { createWorkflowInspector } from '../src/inspector/workflow-inspector.ts'
import { freshDatabase } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { ADMIN_TOKEN, freePort, startService } from './support/service.ts'
import { waitUntil } from './support/process.ts'

/** A WebSocket server standing in for the Stately inspector receives whole flows, secret-free. */

const db = await freshDatabase()
t.teardown(db.drop)
const run = promisify(execFile)

interface Inspection {
  type: string
  sessionId: string
  rootId?: string
  parentId?: string
  sourceId?: string
  createdAt: string
  name?: string
  definition?: string
  event?: { type: string } & Record<string, unknown>
  snapshot?: { value: unknown; context: Record<string, unknown>; status: string; tags?: string[]; children?: Record<string, { id: string }>; input?: Record<string, unknown> }
}

async function fakeInspector(t: { teardown(fn: () => unknown): void }, port?: number) {
  port ??= await freePort()
  const server = new WebSocketServer({ port, host: '127.0.0.1' })
  await new Promise((r) => server.once('listening', r))
  const received: Inspection[] = []
  const raw: string[] = []
  server.on('connection', (socket) => socket.on('message', (data) => {
    raw.push(String(data))
    received.push(JSON.parse(String(data)) as Inspection)
  }))
  const close = () => new Promise<void>((r) => {
    for (const client of server.clients) client.terminate()
    server.close(() => r())
  })
  t.teardown(close)
  return { url: `ws://127.0.0.1:${port}`, port, received, raw, close }
}

const ofType = (received: Inspection[], type: string) => received.filter((e) => e.type === type)
/** What concerns the workflow's own actor (not its effects' child actors). */
const root = (received: Inspection[]) => received.filter((e) => !e.sessionId.includes('/'))
const eventTypes = (received: Inspection[]) => ofType(root(received), '@xstate.event').map((e) => e.event!.type)
const snapshots = (received: Inspection[]) => ofType(root(received), '@xstate.snapshot').map((e) => e.snapshot!)

t.test('INSPECT: a whole flow under one stable actor, no secret', async (t) => {
  const inspector = await fakeInspector(t)
  const service = await startService(t, { db, env: { INSPECT: inspector.url } })
  const owner = siteOwner(service)
  const wixToken = `wix-token-${randomBytes(8).toString('hex')}`
  await owner.openAppUrl(wixToken)
  const id = await owner.installationId()
  const back = await owner.approve()
  const instanceId = back.searchParams.get('instanceId')!
  await owner.callback(back)
  const finish = await service.api('POST', `/api/installations/${id}/finish`)
  t.equal(finish.json.state, 'Finished', 'the flow runs to the end')
  await waitUntil('the inspector has the Finished snapshot', () => snapshots(inspector.received).some((s) => s.value === 'Finished'))

  const actor = `installation:${id}`
  t.same([...new Set(inspector.received.map((e) => e.sessionId))], [actor, `${actor}/exchangeCode`, `${actor}/finishSetup`],
    'everything arrives under one actor id, named after the installation, and its effects as actors of their own')
  t.same([...new Set(inspector.received.map((e) => e.rootId))], [actor], 'every message names that actor as its root (not "anonymous")')
  const actors = ofType(root(inspector.received), '@xstate.actor')
  t.equal(actors.length, 1, 'announced once, not per request')
  t.equal(inspector.received[0]!.type, '@xstate.actor', 'before anything else about it')
  const definition = JSON.parse(actors[0]!.definition ?? 'null') as { id: string; states: Record<string, unknown> } | null
  t.equal(definition?.id, 'installation', 'with the machine, so the inspector can draw it')
  t.same(Object.keys(definition?.states ?? {}).sort(), Object.keys(installationMachine.config.states!).sort(), 'all its states')

  const events = eventTypes(inspector.received)
  t.same(events, [
    'xstate.init', 'INSTALLER_REDIRECTED', 'CALLBACK', 'xstate.done.actor.exchangeCode', 'BROWSER_SENT_ON', 'FINISH', 'xstate.done.actor.finishSetup',
  ], 'every event of the flow, in order')
  const after = snapshots(inspector.received)
  t.same(after.map((s) => s.value), [{ AppUrlHit: 'redirecting' }, 'Authorizing', 'CodeReceived', 'Tokened', { SetupIncomplete: 'waiting' }, { SetupIncomplete: 'finishing' }, 'Finished'], 'and the state after each')
  t.same(after.map((s) => s.context.claimedInstanceId), [null, null, instanceId, instanceId, instanceId, instanceId, instanceId], 'the context keeps the callback\'s claim')
  t.same(after.map((s) => s.context.instanceId), [null, null, null, instanceId, instanceId, instanceId, instanceId], 'and learns the instanceId once Wix confirms it')
  const [row] = await db.sql<{ snapshot: { context: Record<string, unknown> } }[]>`select snapshot from wix_engine.workflows where id = ${id}`
  t.same(after.at(-1)!.context, row!.snapshot.context, 'the last snapshot carries the stored context, whole')
  t.equal(ofType(inspector.received, '@xstate.event')[2]!.event!.type, 'CALLBACK', 'the callback is there')
  t.same((ofType(inspector.received, '@xstate.event')[2]!.event as { code?: string }).code, '[redacted]', 'with its code redacted')

  const children = ofType(inspector.received, '@xstate.actor').filter((e) => e.parentId === actor)
  t.same(children.map((c) => c.name), ['exchangeCode', 'finishSetup'], 'each effect is announced as a child actor of the installation')
  t.same(children[0]!.snapshot!.input, { installationId: id, claimedInstanceId: instanceId, code: '[redacted]' }, 'with its input (the instance the Redirect URL claimed), the code redacted')
  const callbackAt = inspector.received.findIndex((e) => e.type === '@xstate.event' && e.event?.type === 'CALLBACK')
  const exchangeAt = inspector.received.indexOf(children[0]!)
  const resultAt = inspector.received.findIndex((e) => e.type === '@xstate.event' && e.event?.type === 'xstate.done.actor.exchangeCode')
  t.ok(callbackAt < exchangeAt && exchangeAt < resultAt, 'the exchange starts after the callback, and before its result')
  const exchangeDone = inspector.received.find((e) => e.type === '@xstate.snapshot' && e.sessionId === `${actor}/exchangeCode`)
  t.equal(exchangeDone?.snapshot?.status, 'done', 'and ends done')
  t.equal(ofType(root(inspector.received), '@xstate.event').find((e) => e.event?.type === 'xstate.done.actor.exchangeCode')?.sourceId, `${actor}/exchangeCode`,
    'its result comes from it')
  const inCodeReceived = snapshots(inspector.received).find((s) => s.value === 'CodeReceived')
  t.same(inCodeReceived?.children, { exchangeCode: { xstate$$type: 1, id: `${actor}/exchangeCode` } }, 'snapshots carry their children')
  t.same(inCodeReceived?.tags, [], 'and their tags')

  // Every secret of the flow, each of which passed through this process.
  const accessToken = (await service.api('POST', `/api/installations/${id}/access-token`)).json.accessToken as string
  const secrets = [service.wix.appSecret, back.searchParams.get('code')!, owner.state, wixToken, accessToken, ...service.wix.refreshTokens.keys(),
    ...service.wix.requests.map((r) => String(r.headers.authorization ?? '')).filter(Boolean)]
  t.ok(secrets.length >= 7 && secrets.every((s) => s.length >= 16), `checked ${secrets.length} secrets`)
  const everything = inspector.raw.join('\n')
  t.same(secrets.filter((s) => everything.includes(s)), [], 'no secret reaches the inspector')
  t.notOk(service.logs.some((l) => l.includes('inspector unreachable')), 'and nothing was lost on the way')

  await t.test('npm run inspect replays the stored history under the same actor', async (t) => {
    const replayTo = await fakeInspector(t)
    const env = { ...process.env, DATABASE_URL: db.url, INSPECT: replayTo.url }
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/inspect.ts', instanceId], { env })
    const lines = stdout.trim().split('\n')
    t.equal(lines.length, 8, 'a line per event and one at the end')
    t.match(lines[2], /CALLBACK {2}Authorizing → CodeReceived {2}\d{4}-\d\d-\d\dT/, 'each saying what happened, and when')
    t.equal(lines.at(-1), `replayed 7 events of installation ${id} into ${replayTo.url} as actor installation:${id} (ends in "Finished")`, 'and the last what was replayed')
    t.same([...new Set(root(replayTo.received).map((e) => e.sessionId))], [`installation:${id}`], 'under the same actor id')
    t.equal(ofType(root(replayTo.received), '@xstate.actor').length, 1, 'announced once')
    const history = await db.sql<{ at: Date }[]>`select at from wix_engine.workflow_history where workflow_id = ${id} order by seq`
    t.same(ofType(root(replayTo.received), '@xstate.event').map((e) => e.createdAt), history.map((h) => String(h.at.getTime())),
      'each replayed event is stamped with when it happened')
    t.equal(ofType(root(replayTo.received), '@xstate.actor')[0]!.definition, actors[0]!.definition, 'with the same machine')
    t.same(eventTypes(replayTo.received), events, 'the same events')
    t.same(snapshots(replayTo.received), after, 'recomputing the same snapshots: values, contexts, statuses')
    t.same(secrets.filter((s) => replayTo.raw.join('\n').includes(s)), [], 'and no secret')

    const missing = await run(process.execPath, ['--import', 'tsx', 'scripts/inspect.ts', 'nope'], { env }).catch((e) => e)
    t.equal(missing.code, 1, 'an unknown installation exits 1')
    t.equal(missing.stderr.trim(), 'inspect: no installation nope', 'with one line that says so')

    const nobody = `ws://127.0.0.1:${await freePort()}`
    const unreachable = await run(process.execPath, ['--import', 'tsx', 'scripts/inspect.ts', id], { env: { ...env, INSPECT: nobody } }).catch((e) => e)
    t.equal(unreachable.code, 1, 'an unreachable inspector exits 1')
    t.equal(unreachable.stderr.trim(), `inspect: could not reach the inspector at ${nobody}`, 'with one line that says so')
    t.equal(unreachable.stdout, '', 'having claimed to replay nothing')
  })
})

t.test('no inspector listening: the service runs on, and says so once', async (t) => {
  const nobody = `ws://127.0.0.1:${await freePort()}`
  const service = await startService(t, { db, env: { INSPECT: nobody } })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const id = await owner.installationId()
  await owner.callback(await owner.approve())
  const finish = await service.api('POST', `/api/installations/${id}/finish`)
  t.equal(finish.status, 200, 'the flow runs to the end')
  t.equal(finish.json.state, 'Finished', 'Finished')
  const warnings = service.logs.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.msg.includes('inspector unreachable'))
  t.equal(warnings.length, 1, 'one log line says the inspector is unreachable')
  t.equal(warnings[0]!.level, 40, 'at warn')
  await service.app.close()
})

const step = (n: number) => [{ event: `E${n}`, from: `S${n - 1}`, to: `S${n}`, data: { type: `E${n}` } }]
const workflow = { id: 'w1', machine: 'm', context: {}, status: 'active' as const }

t.test('an inspector that restarts gets what it missed, once', async (t) => {
  const first = await fakeInspector(t)
  let outages = 0
  const inspector = createWorkflowInspector(first.url, { retryMs: { min: 20, max: 50 }, onDown: () => outages++ })
  t.teardown(() => inspector.stop())
  inspector.record(workflow, step(1))
  await waitUntil('the first inspector has step 1', () => first.received.length === 3)
  await first.close()
  // What is written into a connection in its last moments is lost with it: no acks in this protocol.
  await waitUntil('the inspector noticed', () => outages === 1)
  inspector.record(workflow, step(2))
  inspector.record(workflow, step(3))
  const second = await fakeInspector(t, first.port)
  await waitUntil('the second inspector has steps 2 and 3', () => second.received.length >= 5)
  await new Promise((r) => setTimeout(r, 100))
  t.same(eventTypes(second.received), ['E2', 'E3'], 'what was sent while it was away arrives, and nothing twice')
  t.equal(second.received[0]?.type, '@xstate.actor', 'after the actor, announced again for the new connection')
})

t.test('while unreachable, the newest messages are kept, up to a bound', async (t) => {
  const port = await freePort()
  const inspector = createWorkflowInspector(`ws://127.0.0.1:${port}`, { retryMs: { min: 20, max: 50 }, maxBuffered: 10 })
  t.teardown(() => inspector.stop())
  for (let n = 1; n <= 20; n++) inspector.record(workflow, step(n))
  t.equal(inspector.dropped(), 31, 'the actor and 30 older messages were dropped')
  const late = await fakeInspector(t, port)
  await waitUntil('the late inspector has the buffer', () => late.received.length >= 10)
  await new Promise((r) => setTimeout(r, 100))
  t.same(eventTypes(late.received), ['E16', 'E17', 'E18', 'E19', 'E20'], 'it receives the last ten messages')
})

t.test('a stopped inspector stops trying', async (t) => {
  // The client port of every connection accepted, in the order they were made.
  const accepted: number[] = []
  const refuser = createServer((s) => {
    accepted.push(s.remotePort!)
    s.destroy()
  })
  await new Promise<void>((r) => refuser.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise((r) => refuser.close(r)))
  const port = (refuser.address() as { port: number }).port
  const warnings: string[] = []
  const inspector = createWorkflowInspector(`ws://127.0.0.1:${port}`, {
    retryMs: { min: 10, max: 20 },
    onDown: (reason) => warnings.push(reason),
  })
  await waitUntil('it has tried a few times', () => accepted.length >= 3)
  t.equal(warnings.length, 1, 'reporting the outage once, however many tries')
  await inspector.stop()
  // Connections are accepted in the order they were made: once a probe of ours is accepted, so is
  // every try begun before it, however late a loaded machine gets to the accepts.
  const probe = async () => {
    const socket = connect(port, '127.0.0.1')
    await new Promise((r) => socket.once('connect', r))
    const mine = socket.localPort!
    socket.destroy()
    await waitUntil('the probe is accepted', () => accepted.includes(mine))
    return accepted.indexOf(mine)
  }
  const stoppedAt = await probe()
  // Ten retry delays: a loop that went on trying would have tried again by now.
  await new Promise((r) => setTimeout(r, 200))
  t.equal(await probe(), stoppedAt + 1, 'and no more tries after stop')
})

t.test('INSPECT=true: the local inspector server, or the one already there', async (t) => {
  const taken = createServer()
  await new Promise<void>((r) => taken.listen(0, r))
  t.teardown(() => new Promise((r) => taken.close(r)))
  t.equal(await startLocalInspector((taken.address() as { port: number }).port), undefined, 'a taken port is left alone, and nothing crashes')

  const port = await freePort()
  const server = await startLocalInspector(port)
  t.ok(server, 'a free port gets the server')
  t.teardown(() => server?.stop())
  await waitUntil('it listens', async () => {
    const probe = new WebSocket(`ws://127.0.0.1:${port}`)
    return new Promise<boolean>((r) => {
      probe.once('open', () => (probe.close(), r(true)))
      probe.once('error', () => r(false))
    })
  })
  const viewer = new WebSocket(`ws://127.0.0.1:${port}`)
  const seen: Inspection[] = []
  viewer.on('message', (d) => seen.push(JSON.parse(String(d))))
  await new Promise((r) => viewer.once('open', r))
  t.teardown(() => viewer.terminate())
  const inspector = createWorkflowInspector(`ws://127.0.0.1:${port}`)
  t.teardown(() => inspector.stop())
  inspector.record(workflow, step(1))
  await waitUntil('the viewer sees the step', () => seen.length >= 3)
  t.same(seen.map((e) => e.type), ['@xstate.actor', '@xstate.event', '@xstate.snapshot'], 'and relays what inspectors send to whoever watches')
})

/** A viewer of the local inspector server, as the bridge page is: a WebSocket client that only listens. */
async function viewer(t: { teardown(fn: () => unknown): void }, port: number, origin?: string) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, origin ? { origin } : {})
  const seen: Inspection[] = []
  ws.on('message', (d) => seen.push(JSON.parse(String(d)) as Inspection))
  t.teardown(() => ws.terminate())
  const opened = await new Promise<boolean>((r) => {
    ws.once('open', () => r(true))
    ws.once('error', () => r(false))
  })
  return { seen, opened }
}

t.test('a viewer that connects late still gets every actor before its events', async (t) => {
  const port = await freePort()
  const server = await startLocalInspector(port)
  t.teardown(() => server?.stop())
  const inspector = createWorkflowInspector(`ws://127.0.0.1:${port}`)
  t.teardown(() => inspector.stop())
  const a = { ...workflow, id: 'a' }
  const b = { ...workflow, id: 'b' }
  inspector.record(a, step(1))
  // 241 messages of another workflow: the server's last 200 no longer hold either announcement.
  for (let n = 1; n <= 120; n++) inspector.record(b, step(n))
  const probe = await viewer(t, port)
  await waitUntil('the probe has what the server kept', () => probe.seen.length >= 200)
  const late = await viewer(t, port)
  await waitUntil('the late viewer has what the server kept', () => late.seen.length >= 200)
  t.equal(late.seen[0]?.type, '@xstate.actor', 'the late viewer is told of the actor first')
  t.equal(late.seen[0]?.sessionId, 'm:b', 'the one whose events follow')
  inspector.record(a, step(2))
  await waitUntil('the viewer sees step 2 of the first workflow', () => late.seen.some((e) => e.sessionId === 'm:a' && e.type === '@xstate.snapshot'))
  const ofA = late.seen.filter((e) => e.sessionId === 'm:a')
  t.same(ofA.map((e) => e.type), ['@xstate.actor', '@xstate.event', '@xstate.snapshot'],
    'an actor announced too long ago is announced again before its next event')
  t.same(ofA[0]!.snapshot!.value, 'S1', 'in the state it was in')
})

t.test('the local inspector server is for this machine only', async (t) => {
  const port = await freePort()
  const server = await startLocalInspector(port)
  t.teardown(() => server?.stop())
  t.ok((await viewer(t, port)).opened, 'a process on this machine connects')
  t.ok((await viewer(t, port, `http://localhost:${port}`)).opened, 'so does its own bridge page')
  t.notOk((await viewer(t, port, 'https://evil.example')).opened, 'a page of another site cannot open its WebSocket')
  const { networkInterfaces } = await import('node:os')
  const external = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)
  if (!external) return t.comment('no non-loopback interface to try: not checked')
  const reached = await new Promise<boolean>((r) => {
    const s = new WebSocket(`ws://${external.address}:${port}`)
    s.once('open', () => (s.terminate(), r(true)))
    s.once('error', () => r(false))
  })
  t.notOk(reached, `it does not listen on ${external.address}`)
})

t.test('redaction by what a field is: secrets go, error codes stay', async (t) => {
  const inspector = await fakeInspector(t)
  const sender = createWorkflowInspector(inspector.url)
  t.teardown(() => sender.stop())
  sender.record({ ...workflow, context: { lastError: { code: 'WIX_REJECTED', message: 'no' }, state: 'kept' } }, [
    { event: 'CALLBACK', from: 'A', to: 'B', data: { code: 'oauth-code-secret', instanceId: 'i' } },
    { event: 'xstate.error.actor.x', from: 'B', to: 'C', data: { error: { code: 'WIX_REJECTED', status: 400 } } },
  ])
  await waitUntil('the inspector has both steps', () => inspector.received.length >= 5)
  const events = ofType(inspector.received, '@xstate.event').map((e) => e.event!)
  t.equal(events[0]!.code, '[redacted]', "a callback's OAuth code is redacted")
  t.same(events[1]!.error, { code: 'WIX_REJECTED', status: 400 }, "an effect error's code shows as the API shows it")
  const context = snapshots(inspector.received)[0]!.context
  t.same(context, { lastError: { code: 'WIX_REJECTED', message: 'no' }, state: 'kept' }, 'contexts are shown whole')
  t.notOk(inspector.raw.join('').includes('oauth-code-secret'), 'and the code is nowhere')
})

t.test('an instance with several installations, replayed from the command line and from the console', async (t) => {
  const inspector = await fakeInspector(t)
  const service = await startService(t, { db, env: { INSPECT: inspector.url } })
  const first = siteOwner(service)
  await first.openAppUrl()
  const back = await first.approve()
  await first.callback(back)
  const instanceId = back.searchParams.get('instanceId')!
  const again = siteOwner(service)
  await again.openAppUrl()
  const newest = await again.installationId()
  await again.callback(await again.approve(instanceId))

  const replayTo = await fakeInspector(t)
  const env = { ...process.env, DATABASE_URL: db.url, INSPECT: replayTo.url }
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/inspect.ts', instanceId], { env })
  t.match(stdout.split('\n')[0], new RegExp(`^instance ${instanceId} has 2 installations; replaying ${newest}\\. The others: ${await first.installationId()} \\(SetupIncomplete, `),
    'the replay says the instance had two installations, and which one it replays')

  // The console's button replays into the inspector the service sends to.
  const signIn = await request(`${service.url}/console/sign-in`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: service.url }, body: `token=${ADMIN_TOKEN}`,
  })
  const cookie = String(signIn.headers['set-cookie']).split(';')[0]!
  const page = await (await request(`${service.url}/console/installations/${newest}`, { headers: { cookie } })).body.text()
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!
  t.match(page, /Replay into the XState inspector<\/button>/, 'the installation page offers the replay')
  const before = inspector.received.length
  const replayed = await request(`${service.url}/console/installations/${newest}/inspect`, {
    method: 'POST', headers: { cookie, origin: service.url, 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${csrf}`,
  })
  await replayed.body.text()
  t.equal(replayed.statusCode, 303, 'the button answers with the page again')
  await waitUntil('the inspector has the replay', () => ofType(inspector.received.slice(before), '@xstate.snapshot').length >= 4)
  const sent = root(inspector.received.slice(before))
  t.equal(sent[0]?.type, '@xstate.actor', 'the replay announces the actor afresh')
  t.same(eventTypes(sent).slice(0, 3), ['xstate.init', 'INSTALLER_REDIRECTED', 'CALLBACK'], 'and sends its history from the start')
})
