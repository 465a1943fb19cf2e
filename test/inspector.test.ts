import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { connect, createServer } from 'node:net'
import { createServer as createHttpServer } from 'node:http'
import { promisify } from 'node:util'
import { createContext, runInContext } from 'node:vm'
import t from 'tap'
import { request } from 'undici'
import WebSocket, { WebSocketServer } from 'ws'
import { assign, setup } from 'xstate'
import { installationMachine } from '../machines/installation.ts'
import { loadConfig } from '../src/config.ts'
import { createEngine, defineWorkflow } from '../src/engine/index.ts'
import { startFakeWix } from '../src/sandbox/fake-wix.ts'
import { startLocalInspector } from '../src/inspector/local-server.ts'
import { createWorkflowInspector } from '../src/inspector/workflow-inspector.ts'
import { builtEntry } from './support/build.ts'
import { freshDatabase } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { identitySealer, silentLog } from './support/engine.ts'
import { ADMIN_TOKEN, freePort, startService, wixEnv } from './support/service.ts'
import { startServerProcess, waitUntil } from './support/process.ts'

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
  id?: string | null
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
    const { stdout } = await run(process.execPath, [await builtEntry('scripts/inspect.ts'), instanceId], { env })
    const lines = stdout.trim().split('\n')
    t.equal(lines.length, 8, 'a line per event and one at the end')
    t.match(lines[2], /CALLBACK {2}Authorizing → CodeReceived {2}\d{4}-\d\d-\d\dT/, 'each saying what happened, and when')
    t.equal(lines.at(-1), `replayed 7 events of installation ${id} into ${replayTo.url} as actor installation:${id} (ends in "Finished")`, 'and the last what was replayed')
    t.same([...new Set(root(replayTo.received).map((e) => e.sessionId))], [`installation:${id}`], 'under the same actor id')
    t.equal(ofType(root(replayTo.received), '@xstate.actor').length, 1, 'announced once')
    const history = await db.sql<{ at: Date }[]>`select at from wix_engine.workflow_events where workflow_id = ${id} order by seq`
    t.same(ofType(root(replayTo.received), '@xstate.event').map((e) => e.createdAt), history.map((h) => String(h.at.getTime())),
      'each replayed event is stamped with when it happened')
    t.equal(ofType(root(replayTo.received), '@xstate.actor')[0]!.definition, actors[0]!.definition, 'with the same machine')
    t.same(eventTypes(replayTo.received), events, 'the same events')
    const replayedIds = ofType(root(replayTo.received), '@xstate.event').map((e) => e.id)
    t.equal(new Set(replayedIds).size, events.length, 'each with an id of its own (the start and the redirect of one write too)')
    t.same(replayedIds, ofType(root(inspector.received), '@xstate.event').map((e) => e.id), 'the id it had live')
    t.same(snapshots(replayTo.received), after, 'recomputing the same snapshots: values, contexts, statuses')
    t.same(secrets.filter((s) => replayTo.raw.join('\n').includes(s)), [], 'and no secret')

    const missing = await run(process.execPath, [await builtEntry('scripts/inspect.ts'), 'nope'], { env }).catch((e) => e)
    t.equal(missing.code, 1, 'an unknown installation exits 1')
    t.equal(missing.stderr.trim(), 'inspect: no installation nope', 'with one line that says so')

    const nobody = `ws://127.0.0.1:${await freePort()}`
    const unreachable = await run(process.execPath, [await builtEntry('scripts/inspect.ts'), id], { env: { ...env, INSPECT: nobody } }).catch((e) => e)
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
  /** A server that accepts and drops every connection, noting the client port of each, in order. */
  const refuser = async () => {
    const accepted: number[] = []
    const server = createServer((s) => {
      accepted.push(s.remotePort!)
      s.destroy()
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    t.teardown(() => new Promise((r) => server.close(r)))
    return { accepted, port: (server.address() as { port: number }).port }
  }
  const { accepted, port } = await refuser()
  const warnings: string[] = []
  const inspector = createWorkflowInspector(`ws://127.0.0.1:${port}`, {
    retryMs: { min: 10, max: 20 },
    onDown: (reason) => warnings.push(reason),
  })
  // Another one, never stopped, trying as often elsewhere: the clock the stopped one is judged by.
  const reference = await refuser()
  const going = createWorkflowInspector(`ws://127.0.0.1:${reference.port}`, { retryMs: { min: 10, max: 20 } })
  t.teardown(() => going.stop())
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
  // Five tries by the one still going, however slow the machine: a loop that went on trying would have tried again.
  const then = reference.accepted.length
  await waitUntil('the inspector still going tried five more times', () => reference.accepted.length >= then + 5)
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
  t.same(late.seen.slice(0, 2).map((e) => [e.type, e.sessionId]), [['@xstate.actor', 'm:a'], ['@xstate.actor', 'm:b']],
    'the late viewer is told of both live actors first, the one with no message left in the window too')
  t.same(late.seen[0]!.snapshot!.value, 'S1', 'each in the state it was in')
  inspector.record(a, step(2))
  await waitUntil('the viewer sees step 2 of the first workflow', () => late.seen.some((e) => e.sessionId === 'm:a' && e.type === '@xstate.snapshot'))
  const ofA = late.seen.filter((e) => e.sessionId === 'm:a')
  t.same(ofA.map((e) => e.type), ['@xstate.actor', '@xstate.actor', '@xstate.event', '@xstate.snapshot'],
    'an actor announced too long ago is announced again before its next event')
  t.same(ofA[1]!.snapshot!.value, 'S1', 'in the state it was in')
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
  const { stdout } = await run(process.execPath, [await builtEntry('scripts/inspect.ts'), instanceId], { env })
  t.match(stdout.split('\n')[0], new RegExp(`^instance ${instanceId} has 2 installations; replaying ${newest}\\. The others: ${await first.installationId()} \\(SetupIncomplete, `),
    'the replay says the instance had two installations, and which one it replays')
  const older = await first.installationId()
  const byId = (await run(process.execPath, [await builtEntry('scripts/inspect.ts'), older], { env })).stdout.trim().split('\n')
  t.notMatch(byId[0], /installations/, 'given an installation id, it does not talk of the instance\'s others')
  t.match(byId.at(-1), `events of installation ${older} `, 'and replays the one it was given')

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

/** Messages about an actor (or naming a child) the receiver had not been told of before, as `type sessionId`. */
function unannounced(received: Inspection[]) {
  const known = new Set<string>()
  const wrong: string[] = []
  for (const m of received) {
    if (m.type === '@xstate.actor') {
      if (m.parentId && !known.has(m.parentId)) wrong.push(`${m.type} ${m.sessionId} before its parent`)
      known.add(m.sessionId)
      continue
    }
    const named = [m.sessionId, ...Object.values(m.snapshot?.children ?? {}).map((c) => c.id)]
    for (const id of named.filter((n) => !known.has(n))) wrong.push(`${m.type} ${m.sessionId} naming ${id}`)
  }
  return wrong
}

/** The announcements a viewer got before any other message. */
const announcedFirst = (seen: Inspection[]) => {
  const end = seen.findIndex((m) => m.type !== '@xstate.actor')
  return end === -1 ? seen : seen.slice(0, end)
}

/**
 * The inspector server's own bridge page, run as a browser runs it: its script, fetched from the
 * server, with a browser-like WebSocket (errors are events, never thrown), and what it posts to the
 * Stately iframe recorded.
 */
async function bridgePage(t: { teardown(fn: () => unknown): void }, port: number) {
  const html = await (await request(`http://127.0.0.1:${port}/`)).body.text()
  const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!
  const posted: Inspection[] = []
  const sockets: WebSocket[] = []
  class BrowserWebSocket extends WebSocket {
    constructor(url: string) {
      super(url)
      this.on('error', () => {})
      sockets.push(this)
    }
  }
  const listeners: ((e: { data: unknown }) => void)[] = []
  const iframe = { contentWindow: { postMessage: (m: Inspection) => posted.push(m) } }
  let closed = false
  const context = createContext({
    document: { getElementById: () => iframe },
    window: { addEventListener: (_type: string, fn: (e: { data: unknown }) => void) => listeners.push(fn) },
    location: { host: `127.0.0.1:${port}` },
    WebSocket: BrowserWebSocket,
    // The page closed: no more reconnecting.
    setTimeout: (fn: () => void, ms: number) => setTimeout(() => closed || fn(), ms),
    JSON,
  })
  runInContext(script, context)
  for (const listener of listeners) listener({ data: { type: '@statelyai.connected' } })
  t.teardown(() => {
    closed = true
    for (const socket of sockets) socket.terminate()
  })
  return { posted, sockets }
}

t.test('after a service restart, the bridge page reconnects and sees every installation in flight, as it stands, first', async (t) => {
  // A database of its own, which only the service processes use (PGlite serves one connection).
  const own = await freshDatabase()
  t.teardown(own.drop)
  const fake = await startFakeWix({ appId: 'inspect-restart', appSecret: randomBytes(12).toString('hex') })
  t.teardown(fake.close)
  const port = await freePort()
  const inspectPort = await freePort()
  const env = {
    COOKIE_SECRET: randomBytes(32).toString('hex'), TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ...wixEnv(fake, port), DATABASE_URL: own.url, INSPECT: 'true', INSPECT_PORT: String(inspectPort), LOG_LEVEL: 'info',
  }
  const first = await startServerProcess(t, env, port)
  const page = await bridgePage(t, inspectPort)
  const service = { url: first.url } as never
  const authorizing = siteOwner(service)
  await authorizing.openAppUrl()
  const settingUp = siteOwner(service)
  await settingUp.openAppUrl()
  await settingUp.callback(await settingUp.approve())
  const finished = siteOwner(service)
  await finished.openAppUrl()
  await finished.callback(await finished.approve())
  const finishedId = await finished.installationId()
  const finish = await request(`${first.url}/api/installations/${finishedId}/finish`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  t.equal(finish.statusCode, 200, 'one installation finishes')
  await finish.body.text()
  const inFlight = { [`installation:${await authorizing.installationId()}`]: 'Authorizing', [`installation:${await settingUp.installationId()}`]: { SetupIncomplete: 'waiting' } }
  await waitUntil('the page saw the installation finish', () => page.posted.some((m) => m.sessionId === `installation:${finishedId}` && m.snapshot?.value === 'Finished'))

  first.child.kill('SIGKILL')
  await first.exited
  const before = page.posted.length
  await startServerProcess(t, env, port)
  const isAnnounced = (seen: Inspection[]) => Object.keys(inFlight).every((actor) => announcedFirst(seen).some((m) => m.sessionId === actor))
  await waitUntil('the page, reconnected by itself, is told of every installation in flight', () => isAnnounced(page.posted.slice(before)))
  t.ok(page.sockets.length > 1, 'the page opened a new connection itself')
  const told = announcedFirst(page.posted.slice(before))
  for (const [actor, state] of Object.entries(inFlight)) {
    t.same(told.find((m) => m.sessionId === actor)?.snapshot?.value, state, `${actor} is announced in its state, ${JSON.stringify(state)}, before any other message`)
  }
  t.notOk(told.some((m) => m.sessionId === `installation:${finishedId}`), 'a finished installation is not in flight')
  t.same(unannounced(page.posted.slice(before)), [], 'and no message concerns an actor it was not told of')

  const late = await viewer(t, inspectPort)
  await waitUntil('a viewer connecting now is told of them too', () => isAnnounced(late.seen))
  for (const [actor, state] of Object.entries(inFlight)) {
    t.same(announcedFirst(late.seen).find((m) => m.sessionId === actor)?.snapshot?.value, state, `a later viewer gets ${actor} first too`)
  }
})

t.test('a viewer joining during a slow exchange and 45 App URL hits is told of the installation, then its exchange, first', async (t) => {
  const inspectPort = await freePort()
  const service = await startService(t, { db, env: { INSPECT: 'true', INSPECT_PORT: String(inspectPort), REDIRECT_WAIT_MS: '0' } })
  t.ok(service.logs.some((l) => l.includes(`Stately inspector server on 127.0.0.1:${inspectPort}`)), 'the inspector server listens on INSPECT_PORT')
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', delayMs: 60_000 })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const actor = `installation:${await owner.installationId()}`
  const exchange = `${actor}/exchangeCode`
  await owner.callback(await owner.approve())
  await waitUntil('Wix holds the exchange', () => service.wix.requests.some((r) => r.endpoint === 'oauth/access' && r.status === 0))
  for (let n = 0; n < 45; n++) await siteOwner(service).openAppUrl(`hit-${n}`)
  const probe = await viewer(t, inspectPort)
  await waitUntil('the server relayed the 45 hits', () => probe.seen.length >= 200)

  const late = await viewer(t, inspectPort)
  await waitUntil('the late viewer has what the server kept', () => late.seen.length >= 200)
  const told = announcedFirst(late.seen)
  const at = (sessionId: string) => told.findIndex((m) => m.sessionId === sessionId)
  t.ok(at(actor) >= 0, 'the late viewer is told of the installation before any event')
  t.same(told[at(actor)]?.snapshot?.value, 'CodeReceived', 'in the state it is in')
  t.ok(at(exchange) > at(actor), 'and of its running exchange, after it')
  t.notOk(told.slice(0, at(actor)).some((m) => m.parentId), 'parents first, then children')
  const times = ofType(late.seen, '@xstate.event').map((e) => Number(e.createdAt))
  t.same(times, [...times].sort((a, b) => a - b), 'then the events, in time order')

  service.wix.releaseAll()
  await waitUntil('the late viewer sees the exchange end', () => late.seen.some((m) => m.sessionId === exchange && m.type === '@xstate.snapshot'))
  t.equal(late.seen.find((m) => m.sessionId === exchange && m.type === '@xstate.snapshot')?.snapshot?.status, 'done', 'it ends done')
  t.same(unannounced(late.seen), [], 'no message concerns an actor the late viewer was not told of')
})

t.test('a webhook-started installation is announced with no effect it has not announced', async (t) => {
  // A database of its own: the App URL hits of other tests, still at consent, would defer the webhook.
  const own = await freshDatabase()
  t.teardown(own.drop)
  const inspector = await fakeInspector(t)
  const service = await startService(t, { db: own, env: { INSPECT: inspector.url } })
  const { instanceId } = await service.wix.installApp({ originInstanceId: '' })
  const installation = async () => (await own.sql<{ id: string; state: string }[]>`select id, state from wix_engine.workflows where key = ${instanceId}`)[0]
  await waitUntil('the installation is set up', async () => (await installation())?.state === 'SetupIncomplete')
  const { id } = (await installation())!
  const actor = `installation:${id}`
  await waitUntil('the inspector has the SetupIncomplete snapshot', () => inspector.received.some((m) => m.sessionId === actor && (m.snapshot?.value as Record<string, unknown>)?.SetupIncomplete))
  const about = inspector.received.filter((m) => m.rootId === actor)
  t.same(about.slice(0, 4).map((m) => `${m.type} ${m.sessionId.replace(actor, '')}`),
    ['@xstate.actor ', '@xstate.event ', '@xstate.actor /confirmInstall', '@xstate.snapshot '],
    'the installation, its start, the effect it starts, the state after')
  t.same(about[0]!.snapshot!.children, {}, 'it is announced running no effect yet')
  t.same(unannounced(about), [], 'nothing names an actor not announced before it')
})

t.test('each step of a commit of several carries the context as it stands after it', async (t) => {
  const counter = setup({ types: {} as { context: { count: number }; events: { type: 'ADD' } } }).createMachine({
    id: 'counter', context: { count: 0 }, initial: 'counting',
    states: { counting: { on: { ADD: { actions: assign({ count: ({ context }) => context.count + 1 }) } } } },
  })
  const definition = defineWorkflow({ name: 'counter', version: 1, machine: counter, project: () => ({ key: null, reason: null }) })
  const engine = createEngine({ sql: db.sql, definitions: [definition], sealer: identitySealer, log: silentLog, owner: 'inspector-test' })
  const inspector = await fakeInspector(t)
  const sender = createWorkflowInspector(inspector.url, { machine: () => counter })
  t.teardown(() => sender.stop())
  engine.onTransition((w, steps) => sender.record(w, steps))
  await engine.create('counter', {}, { source: 'test', events: [{ type: 'ADD' }, { type: 'ADD' }] })
  await waitUntil('the inspector has the three steps', () => snapshots(inspector.received).length === 3)
  t.same(snapshots(inspector.received).map((s) => s.context.count), [0, 1, 2], 'the start, then each ADD, with its own count')
})

t.test('INSPECT_PORT taken by something that is not an inspector: one line says what to do', async (t) => {
  const taken = createHttpServer((_q, s) => s.end('not an inspector'))
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise((r) => taken.close(r)))
  const port = (taken.address() as { port: number }).port
  const service = await startService(t, { db, env: { INSPECT: 'true', INSPECT_PORT: String(port) } })
  const says = `INSPECT_PORT ${port} is taken by something that is not an XState inspector server: set INSPECT_PORT to a free port`
  await waitUntil('the service says why nothing reaches the inspector', () => service.logs.some((l) => l.includes(says)))
  const line = JSON.parse(service.logs.find((l) => l.includes(says))!) as { level: number }
  t.equal(line.level, 40, 'at warn')
  t.notOk(service.logs.some((l) => l.includes('inspector unreachable')), 'instead of a bare "unreachable"')
  t.equal((await service.api('GET', '/healthz')).status, 200, 'and the service runs on')
  t.throws(() => loadConfig({ INSPECT_PORT: 'eighty' }, () => { throw new Error('not reached') }), /INSPECT_PORT must be a number/, 'a port that is not a number stops the start, naming it')
})
