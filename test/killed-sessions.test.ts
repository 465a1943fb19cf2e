import t from 'tap'
import { fromPromise, setup } from 'xstate'
import { connect, isTransientDatabaseError } from '../src/db/connect.ts'
import { createEngine, defineWorkflow, type Logger } from '../src/engine/index.ts'
import { freshDatabase, needsRealPostgres, postgresProxy, upstreamOf } from './support/database.ts'
import { identitySealer } from './support/engine.ts'
import { waitUntil } from './support/process.ts'

/**
 * The engine's statements on a pool whose session the server kills (pg_terminate_backend, as an
 * admin or a failover does) or whose connection is still opening. What postgres.js 3.4.9 does
 * then, and what the engine must make of it:
 * - the statement running on the killed session fails (CONNECTION_CLOSED, or ECONNRESET);
 * - the next statement on that pool slot fails too, with the killed session's 57P01
 *   (admin_shutdown): the driver keeps the server's farewell and hands it to the first statement
 *   of the connection that replaces it; after that the slot works again;
 * - a statement given up on (cancelled) while its connection is still opening must not take the
 *   connection with it: the driver then never hands that connection out again, and with a pool
 *   of one every later statement waits for ever.
 * Each is a blip to the engine: retried, never a dead job, and nothing waits past its deadline.
 */

/** A statement that has not answered after this is taken to hang for good: a backstop, never a measure. */
const BACKSTOP_MS = 60_000
const answers = <T>(p: Promise<T>) => Promise.race([
  p.then(() => 'answered' as const, (err: { code?: string }) => `failed ${err.code}` as const),
  new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), BACKSTOP_MS).unref()),
])

let ran = 0
const parcel = setup({
  types: { input: {} as { id: string }, context: {} as { id: string } },
  actors: { deliver: fromPromise(async () => void ran++) },
}).createMachine({
  id: 'parcel',
  context: ({ input }) => ({ id: input.id }),
  initial: 'packed',
  states: {
    packed: { on: { SHIP: 'delivering' } },
    delivering: { invoke: { id: 'deliver', src: 'deliver', onDone: 'delivered' } },
    delivered: { type: 'final' },
  },
})
const definition = defineWorkflow({
  name: 'parcel', version: 1, machine: parcel, project: () => ({ key: null, reason: null }),
  retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 500 },
})

/** The engine's warnings, kept: which errors its retries met. */
function recordingLog() {
  const warnings: { msg?: string; code?: string }[] = []
  const log: Logger = {
    debug() {}, info() {}, error() {},
    warn(o, msg) {
      warnings.push({ msg, code: (o as { err?: { code?: string } }).err?.code })
    },
  }
  return { log, warnings }
}

// Every test here needs a real server: on the embedded database none runs, so none is made.
const skip = needsRealPostgres('pg_terminate_backend and TCP fronts')
const db = skip ? undefined : await freshDatabase()
if (db) t.teardown(db.drop)

t.test('a session killed under a write: that write and the next statement fail (the second with 57P01), both are retried, the result lands', {
  skip,
}, async (t) => {
  // One connection: every statement of the engine goes through the session killed.
  const sql = connect(db!.url, { max: 1 })
  const { log, warnings } = recordingLog()
  const engine = createEngine({ sql, definitions: [definition], sealer: identitySealer, log, owner: 'killed', leaseMs: 30_000 })
  t.teardown(async () => {
    await sql.end({ timeout: 1 })
    await engine.runner.stop(0)
  })

  // The result's write waits on a lock this test holds: a statement running when its session is killed.
  const lock = 260_057
  await db!.sql.unsafe(`
    create function hold() returns trigger language plpgsql as $$
    begin perform pg_advisory_lock_shared(${lock}); perform pg_advisory_unlock_shared(${lock}); return new; end $$;
    create trigger hold before update on wix_engine.workflows for each row when (new.state = 'delivered') execute function hold();`)
  t.teardown(() => db!.sql.unsafe('drop trigger hold on wix_engine.workflows; drop function hold()'))
  const holder = await db!.sql.reserve()
  t.teardown(() => holder.release())
  await holder`select pg_advisory_lock(${lock})`

  ran = 0
  const w = await engine.create('parcel', {}, { source: 'test' })
  await engine.send(w.id, { type: 'SHIP' }, { source: 'test' })
  let pid: number | undefined
  await waitUntil("the result's write waits on the lock", async () => {
    const [waiting] = await db!.sql<{ pid: number }[]>`select pid from pg_locks where locktype = 'advisory' and objid = ${lock} and not granted`
    pid = waiting?.pid
    return pid !== undefined
  })
  t.pass('the effect ran and its result is being written')

  await db!.sql`select pg_terminate_backend(${pid!})`
  // The commit's next try (or the lease heartbeat, whichever goes first) opens the slot again.
  await waitUntil('a statement after the kill has failed with 57P01', () => warnings.some((w) => w.code === '57P01'))
  await holder`select pg_advisory_unlock(${lock})`
  await engine.runner.idle()

  const codes = warnings.filter((w) => w.code).map((w) => w.code)
  t.match(codes[0], /^(CONNECTION_CLOSED|ECONNRESET)$/, 'the write on the killed session failed as the connection lost')
  t.ok(codes.includes('57P01'), 'the next statement on that slot failed with the killed session\'s 57P01 (postgres.js 3.4)')
  t.ok(codes.every((code) => isTransientDatabaseError({ code })), `each was a blip, tried again (${codes.join(', ')})`)
  t.equal((await engine.get(w.id))?.state, 'delivered', 'the result landed')
  t.equal(ran, 1, 'the effect ran once')
  t.same(await engine.deadJobs(), [], 'no job ended dead')
  t.equal(await answers(engine.get(w.id)), 'answered', 'and the pool answers the statement after')
})

/**
 * A TCP front for the database that holds a new connection's bytes (a server slow to take it)
 * until `release()`.
 */
async function slowToConnect(dbUrl: string) {
  const held: (() => void)[] = []
  let holding = true
  const proxy = await postgresProxy(dbUrl, upstreamOf(dbUrl), (client, upstream) => {
    for (const s of [client, upstream]) s.on('error', () => {})
    client.on('data', (chunk) => (holding ? held.push(() => upstream.write(chunk)) : upstream.write(chunk)))
    upstream.pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  return {
    url: proxy.url,
    release() {
      holding = false
      held.splice(0).forEach((send) => send())
    },
    close: proxy.destroy,
  }
}

t.test('a write given up while its connection is still opening leaves the connection to the statements after it', {
  skip,
}, async (t) => {
  const front = await slowToConnect(db!.url)
  t.teardown(front.close)
  // One connection, not yet open: the engine's first statement is the one it opens with.
  const sql = connect(front.url, { max: 1 })
  const { log } = recordingLog()
  // The deadline is long enough for any later write on a loaded machine: the test waits it out once.
  const engine = createEngine({
    sql, definitions: [definition], sealer: identitySealer, log, owner: 'opening', leaseMs: 30_000, writeTimeoutMs: 3_000,
  })
  // The pool first: a statement still waiting for a connection then fails instead of holding the runner's stop.
  t.teardown(async () => {
    await sql.end({ timeout: 1 })
    await engine.runner.stop(0)
  })

  const parcels = async () => (await db!.sql<{ n: number }[]>`select count(*)::int as n from wix_engine.workflows where machine = 'parcel'`)[0]!.n
  const before = await parcels()
  const given = await engine.create('parcel', {}, { source: 'test' }).then(() => undefined, (err: { code?: string }) => err)
  t.equal(given?.code, 'WRITE_TIMEOUT', 'the write went unanswered past its deadline, and was given up')
  t.ok(isTransientDatabaseError(given), 'as a blip: a caller tries again')
  front.release()

  // The connection opens now. Every later statement must get it.
  ran = 0
  const later = engine.create('parcel', {}, { source: 'test' })
  const next = await answers(later)
  t.equal(next, 'answered', 'the next write answers')
  if (next !== 'answered') return
  const w = await later
  await engine.send(w.id, { type: 'SHIP' }, { source: 'test' })
  await engine.runner.idle()
  t.equal((await engine.get(w.id))?.state, 'delivered', 'and the workflow runs on through that connection')
  t.equal(await parcels(), before + 1, 'the write given up never landed: one workflow more, not two')
})
