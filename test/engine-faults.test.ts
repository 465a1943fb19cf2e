import t from 'tap'
import postgres from 'postgres'
import { assign, fromPromise, setup } from 'xstate'
import { installationMachine } from '../machines/installation.ts'
import { createEngine, defineWorkflow, type Sealer } from '../src/engine/index.ts'
import { freshDatabase, needsRealPostgres } from './support/database.ts'
import { effectJob as effectJobOf, effectsOf, expireLeases as expireLeasesOf, identitySealer, silentLog, testClock } from './support/engine.ts'
import { waitUntil } from './support/process.ts'

/**
 * Each fault the engine must survive, injected for real: a commit that fails after the effect
 * succeeded, a lease taken over mid-run, clocks 30 s apart, a cancel while the effect runs, poison
 * rows, a throwing listener. Outcomes are read from the database and from the effect's own count.
 */

interface Call {
  input: { address: string; attempt?: number; idempotencyKey?: string }
  signal: AbortSignal
  finish(signedBy: string): void
}
let calls: Call[] = []
/** Each run of `deliver` waits until the test finishes it (or answers at once when `instant`). */
let instant: string | null = null

const parcel = setup({
  types: { input: {} as { id: string }, context: {} as { id: string; signedBy: string | null; why: string | null } },
  actors: {
    deliver: fromPromise<{ signedBy: string }, Call['input']>(({ input, signal }) =>
      new Promise((resolve) => {
        calls.push({ input, signal, finish: (signedBy) => resolve({ signedBy }) })
        if (instant) resolve({ signedBy: instant })
      })),
  },
}).createMachine({
  id: 'parcel',
  context: ({ input }) => ({ id: input.id, signedBy: null, why: null }),
  initial: 'packed',
  states: {
    packed: {
      on: { SHIP: 'delivering', HOP: 'passing', TRACK: 'tracking' },
      after: { 60_000: { target: 'lost', actions: assign({ why: 'never shipped' }) } },
    },
    // Entered and left within one step: nothing it invokes or schedules may outlive the step.
    passing: {
      invoke: { id: 'deliver', src: 'deliver', input: () => ({ address: 'nowhere' }) },
      after: { 1_000: 'lost' },
      always: 'delivered',
    },
    delivering: {
      invoke: {
        id: 'deliver',
        src: 'deliver',
        input: () => ({ address: 'Main St 1' }),
        onDone: { target: 'delivered', actions: assign({ signedBy: ({ event }) => event.output.signedBy }) },
        onError: { target: 'lost', actions: assign({ why: ({ event }) => (event.error as { code: string }).code }) },
      },
      on: { CANCEL: 'cancelled' },
    },
    // A result that leads to a state waiting for the recipient (the follow-up tests).
    tracking: {
      invoke: { id: 'deliver', src: 'deliver', input: () => ({ address: 'Main St 2' }), onDone: 'arrived' },
    },
    arrived: { on: { SIGN: 'signed' }, after: { 60_000: 'lost' } },
    signed: { type: 'final' },
    delivered: { type: 'final' },
    lost: { type: 'final' },
    cancelled: { type: 'final' },
  },
})

const definition = defineWorkflow({
  name: 'parcel',
  version: 1,
  machine: parcel,
  project: (s) => ({ key: null, reason: (s.context.why as string | null) ?? null }),
  retry: { maxAttempts: 3, baseDelayMs: 1_000, maxDelayMs: 4_000 },
})

t.test('defineWorkflow refuses what the engine cannot run durably, naming the state', async (t) => {
  const risky = setup({ actions: { beep: () => {} } }).createMachine({
    id: 'risky',
    initial: 'a',
    states: {
      a: { entry: 'beep', on: { GO: 'b' } },
      b: { type: 'parallel', states: { left: {}, right: {} } },
    },
  })
  t.throws(
    () => defineWorkflow({ name: 'risky', version: 1, machine: risky, project: () => ({ key: null, reason: null }) }),
    /state risky\.a runs action beep \(entry\)[\s\S]*state risky\.b is a parallel state/,
    'an entry action that would never run and a parallel state are both named',
  )
  t.doesNotThrow(
    () => defineWorkflow({ name: 'installation', version: 1, machine: installationMachine, project: () => ({ key: null, reason: null }) }),
    'the installation machine is accepted',
  )
})

t.test('faults, on a real Postgres', { skip: needsRealPostgres('several connections and engines') }, async (t) => {
  const db = await freshDatabase()
  t.teardown(db.drop)
  const clock = testClock(new Date())
  const engine = (owner: string, o: { now?: () => Date; leaseMs?: number; sealer?: Sealer; concurrency?: number } = {}) =>
    createEngine({
      sql: db.sql, definitions: [definition], sealer: o.sealer ?? identitySealer, log: silentLog,
      now: o.now ?? clock.now, owner, leaseMs: o.leaseMs ?? 2_000, heartbeatMs: 50, concurrency: o.concurrency,
    })
  const row = async (id: string) => (await db.sql`select state, version, snapshot from wix_engine.workflows where id = ${id}`)[0]!
  const effectJob = (id: string) => effectJobOf(db.sql, id)
  const doneEvents = async (id: string) =>
    (await db.sql`select count(*)::int as n from wix_engine.workflow_events where workflow_id = ${id} and event_type like 'xstate.done.actor.%'`)[0]!.n
  const expireLeases = (id: string) => expireLeasesOf(db.sql, id)

  /**
   * Until the returned connection unlocks advisory lock `lock`, a write moving a workflow to
   * `state` hangs in Postgres (a trigger waits on that lock): a statement that does not answer.
   */
  const hangWritesTo = async (t: { teardown(fn: () => unknown): void }, state: string, lock: number) => {
    await db.sql.unsafe(`
      create function hang() returns trigger language plpgsql as $$
      begin perform pg_advisory_lock_shared(${lock}); perform pg_advisory_unlock_shared(${lock}); return new; end $$;
      create trigger hang before update on wix_engine.workflows for each row when (new.state = '${state}') execute function hang();`)
    t.teardown(() => db.sql.unsafe('drop trigger hang on wix_engine.workflows; drop function hang()'))
    const holder = await db.sql.reserve()
    await holder`select pg_advisory_lock(${lock})`
    return holder
  }

  /**
   * The first `times` writes moving a workflow to `state` fail as "the server is restarting"
   * (57P01, raised by a trigger). Returns how many such writes were tried.
   */
  const failWritesTo = async (t: { teardown(fn: () => unknown): void }, state: string, times: number, errcode = '57P01') => {
    await db.sql`create sequence blips`
    await db.sql.unsafe(`
      create function blip() returns trigger language plpgsql as $$
      begin
        if nextval('blips') <= ${times} then raise exception 'injected fault' using errcode = '${errcode}'; end if;
        return new;
      end $$;
      create trigger blip before update on wix_engine.workflows for each row when (new.state = '${state}') execute function blip();`)
    t.teardown(() => db.sql.unsafe('drop trigger blip on wix_engine.workflows; drop function blip(); drop sequence blips'))
    return async () => Number((await db.sql`select last_value from blips`)[0]!.last_value)
  }

  t.beforeEach(() => {
    calls = []
    instant = null
  })

  await t.test('a commit that fails after the effect succeeded is retried; the effect is not', async (t) => {
    const a = engine('a')
    const w = await a.create('parcel', {}, { source: 'test' })
    // The next two writes of the result hit "the server is restarting".
    await failWritesTo(t, 'delivered', 2)
    instant = 'Ada'
    await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
    await a.runner.idle()
    t.equal(calls.length, 1, 'the effect ran once')
    t.equal((await row(w.id)).state, 'delivered', 'its result landed after the blips')
    t.equal(await effectJob(w.id), undefined, 'on its first attempt: the job is gone with the result that landed')
    t.same(await db.sql`select attempt from wix_engine.job_attempts where workflow_id = ${w.id}`, [], 'no failed run recorded: the blips were the commit\'s, not the run\'s')
    t.match(calls[0]!.input.idempotencyKey, new RegExp(`^${w.id}:[0-9a-f-]{36}$`),
      'the effect was given a stable idempotency key: workflow id and job id')
  })

  for (const [code, what] of [['40001', 'a serialization failure'], ['40P01', 'a deadlock past the resends'],
    ['53300', 'a full server'], ['57014', 'a cancelled statement'], ['25006', 'a standby after a failover']]) {
    await t.test(`${what} (${code}) at the result's commit is a blip: retried, the job never dies`, async (t) => {
      const a = engine('a')
      const w = await a.create('parcel', {}, { source: 'test' })
      // Four tries: past the writer's own resends of a deadlock.
      const tried = await failWritesTo(t, 'delivered', 4, code)
      instant = 'Ada'
      await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
      await a.runner.idle()
      t.ok(await tried() > 4, 'the commit hit the fault and was tried again')
      t.equal((await row(w.id)).state, 'delivered', 'its result landed after the blips')
      t.equal(calls.length, 1, 'the effect ran once')
      t.same(await a.deadJobs(), [], 'no job ended dead')
    })
  }

  await t.test('an error the engine cannot name at the commit leaves the job to its lease: it runs again, it is not killed', async (t) => {
    const a = engine('a')
    const b = engine('b')
    const w = await a.create('parcel', {}, { source: 'test' })
    await failWritesTo(t, 'delivered', 1, 'XX000')
    instant = 'Ada'
    await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
    await a.runner.idle()
    t.match(await effectJob(w.id), { status: 'running', attempts: 1 }, 'the job is still held, by its lease alone')
    await waitUntil('another engine claims the job once its lease ran out', async () => (await b.runner.tick()) === 1)
    await b.runner.idle()
    t.equal(calls.length, 2, 'the effect ran again, on its second attempt')
    t.equal((await row(w.id)).state, 'delivered', 'and its result landed')
    t.same(await a.deadJobs(), [], 'no job ended dead')
  })

  await t.test('a result write the database does not answer is cancelled and sent again; the effect does not run again', {
    skip: needsRealPostgres('holds a statement on an advisory lock, then cancels it'),
  }, async (t) => {
    const logged: string[] = []
    const a = createEngine({
      sql: db.sql, definitions: [definition], sealer: identitySealer, now: clock.now, owner: 'a', leaseMs: 2_000,
      heartbeatMs: 50, writeTimeoutMs: 300, log: { ...silentLog, error: (_o, msg) => void logged.push(String(msg)) },
    })
    // The result's write waits for advisory lock 4242 while the test holds it: a statement that hangs.
    const holder = await hangWritesTo(t, 'delivered', 4242)
    instant = 'Ada'
    const w = await a.create('parcel', {}, { source: 'test' })
    await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
    await waitUntil('the result write is given up on', () => logged.some((m) => /went unanswered/.test(m)))
    t.equal((await row(w.id)).state, 'delivering', 'nothing landed while the database did not answer')
    await holder`select pg_advisory_unlock(4242)`
    holder.release()
    await a.runner.idle()
    t.equal(calls.length, 1, 'the effect ran once')
    t.equal((await row(w.id)).state, 'delivered', 'its kept result landed once the database answered')
    t.equal(await doneEvents(w.id), 1, 'one result in history')
    t.equal(await effectJob(w.id), undefined, 'on its first attempt: the job is gone with the result that landed')
  })

  await t.test('a lease taken over mid-run: the old run is aborted and its result never lands', async (t) => {
    const a = engine('a')
    const b = engine('b')
    const w = await a.create('parcel', {}, { source: 'test' })
    await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
    await waitUntil('the first run starts', () => calls.length === 1)
    // As if a's heartbeat had stalled past the lease. Its heartbeat (every 50 ms) may renew the
    // lease between the two statements on a loaded host: expire it again until b gets the job.
    await waitUntil('another engine claims the job', async () => {
      await expireLeases(w.id)
      return (await b.runner.tick()) === 1
    })
    t.pass('another engine claims the job')
    await waitUntil('the second run starts', () => calls.length === 2)
    await waitUntil("the first run's signal is aborted", () => calls[0]!.signal.aborted, 5_000)
    calls[0]!.finish('stale')
    await a.runner.idle()
    t.equal((await row(w.id)).state, 'delivering', "the first run's late result did not land")
    t.equal(calls[1]!.signal.aborted, false, 'the second run was left alone')
    calls[1]!.finish('fresh')
    await b.runner.idle()
    const after = await row(w.id)
    t.match(after, { state: 'delivered', snapshot: { context: { signedBy: 'fresh' } } }, 'the run that holds the job decided')
    t.equal(await doneEvents(w.id), 1, 'one result in history')
  })

  await t.test('clocks 30 s apart: neither engine takes the other one’s running job', async (t) => {
    const behind = engine('behind', { now: () => new Date(Date.now() - 30_000), leaseMs: 10_000 })
    const ahead = engine('ahead', { now: () => new Date(Date.now() + 30_000), leaseMs: 10_000 })
    const w = await behind.create('parcel', {}, { source: 'test' })
    await behind.send(w.id, { type: 'SHIP' }, { source: 'test' })
    await waitUntil('the run starts', () => calls.length === 1)
    t.equal(await ahead.runner.tick(), 0, 'the engine 60 s ahead sees a live lease')
    t.match(await effectJob(w.id), { status: 'running', lease_owner: 'behind', attempts: 1 }, 'the job stays with its runner')
    calls[0]!.finish('Ada')
    await behind.runner.idle()
    t.equal((await row(w.id)).state, 'delivered', 'and its result lands')
    t.equal(calls.length, 1, 'the effect ran once')
  })

  await t.test('a cancel while the effect runs aborts it; nothing it does afterwards lands', async (t) => {
    const a = engine('a', { leaseMs: 20_000 }) // its timeout is far off: only the cancel can abort it
    const w = await a.create('parcel', {}, { source: 'test' })
    await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
    await waitUntil('the run starts', () => calls.length === 1)
    t.equal((await a.send(w.id, { type: 'CANCEL' }, { source: 'admin' })).accepted, true, 'the cancel is accepted')
    await waitUntil('the running effect sees its signal aborted', () => calls[0]!.signal.aborted, 5_000)
    calls[0]!.finish('too late')
    await a.runner.idle()
    t.equal((await row(w.id)).state, 'cancelled', 'the workflow stays cancelled')
    t.equal(await effectJob(w.id), undefined, 'its effect left the row with the cancel: nothing runs it again')
    t.equal(await doneEvents(w.id), 0, 'no result in history')
  })

  await t.test('poison rows end dead with their reason; the rest of the batch runs', async (t) => {
    const a = engine('a')
    const retiredKey: Sealer = { seal: (s) => s, open: () => { throw new Error('no key with id k1') } }
    const c = engine('c', { sealer: retiredKey })
    const unreadable = await a.create('parcel', {}, { source: 'test' })
    await a.send(unreadable.id, { type: 'SHIP' }, { source: 'test' })
    await waitUntil('the run starts', () => calls.length === 1)
    await a.runner.stop(0) // hands the job back; the engine that claims it next cannot open it
    const orphan = await a.create('parcel', {}, { source: 'test' })
    await db.sql`update wix_engine.workflows set machine = 'retired-machine' where id = ${orphan.id}`
    const healthy = await a.create('parcel', {}, { source: 'test' })
    clock.advance(61_000) // both timers are due
    await c.runner.tick()
    await c.runner.idle()
    t.equal((await row(healthy.id)).state, 'lost', 'the healthy timer in the same batch fired')
    t.match(await effectJob(unreadable.id), { status: 'dead', last_error: { code: 'PAYLOAD_UNREADABLE' } }, 'an unreadable payload ends dead')
    t.match(await row(unreadable.id), { state: 'lost', snapshot: { context: { why: 'PAYLOAD_UNREADABLE' } } }, 'and its workflow hears of it')
    const [orphanTimer] = await db.sql`select status, last_error from wix_engine.jobs where workflow_id = ${orphan.id}`
    t.match(orphanTimer, { status: 'dead', last_error: { code: 'UNKNOWN_MACHINE' } }, 'a job of an unknown machine ends dead')
    clock.advance(120_000)
    t.equal(await c.runner.tick(), 0, 'neither is claimed again')
    t.same((await c.deadJobs()).map((j) => (j.reason as { code: string }).code).sort(), ['PAYLOAD_UNREADABLE', 'UNKNOWN_MACHINE'],
      'deadJobs() lists both, with their reasons')
    t.same(await c.deadJobCounts(), [{ kind: 'effect', code: 'PAYLOAD_UNREADABLE', n: 1 }, { kind: 'timer', code: 'UNKNOWN_MACHINE', n: 1 }],
      'deadJobCounts() counts them by kind and reason')
  })

  await t.test('a job claimed past its attempt budget is not run: it ends dead, the workflow fails', async (t) => {
    const a = engine('a')
    const w = await a.create('parcel', {}, { source: 'test' })
    await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
    await waitUntil('the run starts', () => calls.length === 1)
    await a.runner.stop(0)
    // Its runners kept dying: the budget of 3 runs is spent.
    await db.sql`update wix_engine.workflows set effects = wix_engine.effects_patched(effects, '[{}]', '{"attempts": 3}') where id = ${w.id}`
    const b = engine('b')
    await b.runner.tick()
    await b.runner.idle()
    t.equal(calls.length, 1, 'the effect did not run a fourth time')
    t.match(await effectJob(w.id), { status: 'dead', attempts: 4, last_error: { code: 'ATTEMPTS_EXHAUSTED' } }, 'the job is dead')
    t.match(await row(w.id), { state: 'lost', snapshot: { context: { why: 'ATTEMPTS_EXHAUSTED' } } }, 'and the workflow failed with the reason')
  })

  await t.test('a listener that throws is logged; the effect still runs', async (t) => {
    const a = engine('a')
    a.onTransition(() => {
      throw new Error('listener bug')
    })
    instant = 'Ada'
    const w = await a.create('parcel', {}, { source: 'test' })
    t.equal((await a.send(w.id, { type: 'SHIP' }, { source: 'test' })).accepted, true, 'the event is accepted')
    await a.runner.idle()
    t.equal((await row(w.id)).state, 'delivered', 'its effect ran and its result landed')
  })

  // ---- follow-ups (waitAndSend): the browser sent on in the write of the exchange's result ----
  const arrivedThenSigned = { done: (w: { state: string }) => w.state !== 'tracking', next: (w: { state: string }) => (w.state === 'arrived' ? { type: 'SIGN' } : undefined) }
  /** A parcel on its way (its delivery running here), and a waiter that signs once it arrived. */
  const trackedWithWaiter = async (a: ReturnType<typeof engine>, o: { timeoutMs: number; signal?: AbortSignal }) => {
    const w = await a.create('parcel', {}, { source: 'test' })
    await a.send(w.id, { type: 'TRACK' }, { source: 'test' })
    const waited = a.waitAndSend(w.id, arrivedThenSigned.done, arrivedThenSigned.next, { source: 'browser', ...o })
    await waitUntil('the delivery runs', () => calls.length === 1)
    return { w, waited }
  }
  const steps = (id: string) => db.sql<{ seq: number; to_state: string; source: string; write_seq: number }[]>`
    select seq, to_state, source, write_seq from wix_engine.workflow_events where workflow_id = ${id} order by seq`

  await t.test('a follow-up waiting in this process rides in the write of the result it waited for', async (t) => {
    const a = engine('a')
    const { w, waited } = await trackedWithWaiter(a, { timeoutMs: 5_000 })
    calls[0]!.finish('Ada')
    const r = await waited
    t.equal(r.sent?.accepted, true, 'the follow-up was accepted')
    t.equal(r.workflow?.state, 'signed', 'and the waiter sees where it led')
    const [arrived, signed] = (await steps(w.id)).slice(-2)
    t.match([arrived, signed], [{ to_state: 'arrived', source: 'effect:deliver' }, { to_state: 'signed', source: 'browser' }], 'both steps are in history, each with its source')
    t.equal(arrived!.write_seq, signed!.write_seq, 'written by one transaction: one commit, not two')
    t.match(await row(w.id), { state: 'signed', version: signed!.seq }, 'the row moved on by two versions in that one write')
    const [stored] = await db.sql`select timers from wix_engine.workflows where id = ${w.id}`
    t.same(stored!.timers, [], 'the timer `arrived` sets, cancelled by the follow-up, never reached the row')
  })

  await t.test('a wait that ends while the write carrying its follow-up is in flight still hears how it went', {
    skip: needsRealPostgres('holds a statement on an advisory lock'),
  }, async (t) => {
    const a = engine('a')
    const holder = await hangWritesTo(t, 'signed', 4243)
    const timeoutMs = 1_500
    const deadline = Date.now() + timeoutMs
    const { w, waited } = await trackedWithWaiter(a, { timeoutMs })
    calls[0]!.finish('Ada')
    // The wait runs out while the write holding the result and the follow-up hangs; then it lands.
    await waitUntil('the write waits on the lock', async () =>
      (await db.sql`select 1 from pg_locks where locktype = 'advisory' and objid = 4243 and not granted`).length > 0)
    await new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now()) + 200))
    await holder`select pg_advisory_unlock(4243)`
    holder.release()
    const r = await waited
    t.equal(r.sent?.accepted, true, 'the waiter is told its follow-up was accepted, not that nothing happened')
    t.equal(r.workflow?.state, 'signed', 'with the state it led to')
    const [arrived, signed] = (await steps(w.id)).slice(-2)
    t.match([arrived, signed], [{ to_state: 'arrived' }, { to_state: 'signed' }], 'sent once')
    t.equal(arrived!.write_seq, signed!.write_seq, 'in the write of the result')
  })

  await t.test('a commit carrying a follow-up that fails is retried; the follow-up lands once, the effect ran once', async (t) => {
    const a = engine('a')
    // The first two writes that move a parcel to `signed` (the result with its follow-up) hit "server restarting".
    const blips = await failWritesTo(t, 'signed', 2)
    const { w, waited } = await trackedWithWaiter(a, { timeoutMs: 10_000 })
    calls[0]!.finish('Ada')
    const r = await waited
    await a.runner.idle()
    t.equal(r.sent?.accepted, true, 'the waiter hears its follow-up accepted')
    t.equal((await row(w.id)).state, 'signed', 'and the row is where it led')
    const landed = (await steps(w.id)).slice(2)
    t.match(landed, [{ to_state: 'arrived' }, { to_state: 'signed' }], 'the result and the follow-up are in history once each')
    t.equal(landed.length, 2, 'nothing more')
    t.equal(landed[0]!.write_seq, landed[1]!.write_seq, 'in one commit, after the failed ones')
    t.equal(calls.length, 1, 'the delivery ran once')
    t.equal(await blips(), 3, 'two commits failed, the third landed')
  })

  await t.test('a waiter that left sends nothing; one that came after the result sends its follow-up itself', async (t) => {
    const a = engine('a')
    const gone = new AbortController()
    const { w: left, waited } = await trackedWithWaiter(a, { timeoutMs: 5_000, signal: gone.signal })
    gone.abort()
    t.equal((await waited).sent, undefined, 'the waiter that left is told nothing was sent')
    calls[0]!.finish('Ada')
    await a.runner.idle()
    t.equal((await row(left.id)).state, 'arrived', 'and the result landed without it')
    await a.send(left.id, { type: 'SIGN' }, { source: 'test' }) // no timer of its own left for later tests

    instant = 'Ada'
    const late = await a.create('parcel', {}, { source: 'test' })
    await a.send(late.id, { type: 'TRACK' }, { source: 'test' })
    await a.runner.idle()
    const r = await a.waitAndSend(late.id, arrivedThenSigned.done, arrivedThenSigned.next, { source: 'browser', timeoutMs: 5_000 })
    t.equal(r.sent?.accepted, true, 'a waiter that came after the result sends its follow-up')
    const [arrived, signed] = (await steps(late.id)).slice(-2)
    t.equal(signed!.to_state, 'signed', 'which lands')
    t.not(arrived!.write_seq, signed!.write_seq, 'in a write of its own')
  })

  await t.test('create and send plan alike: a state left within the step starts nothing', async (t) => {
    const a = engine('a')
    const sent = await a.create('parcel', {}, { source: 'test' })
    t.equal((await a.send(sent.id, { type: 'HOP' }, { source: 'test' })).workflow.state, 'delivered', 'send passes through')
    const created = await a.create('parcel', {}, { source: 'test', events: [{ type: 'HOP' }] })
    t.equal(created.state, 'delivered', 'create passes through')
    await a.runner.idle()
    for (const id of [sent.id, created.id]) {
      const live = await db.sql`select kind, name from wix_engine.jobs where workflow_id = ${id} and status in ('pending', 'running')`
      t.same([...live, ...await effectsOf(db.sql, id)], [], 'no effect and no timer is left behind')
    }
    t.equal(calls.length, 0, 'the effect of the passed state never ran')
  })

  await t.test('an effect committed while the runner shuts down is handed back at once, not left leased', async (t) => {
    const a = engine('a', { leaseMs: 60_000 })
    const busy = await a.create('parcel', {}, { source: 'test' })
    await a.send(busy.id, { type: 'SHIP' }, { source: 'test' })
    await waitUntil('the first run starts', () => calls.length === 1)
    const stopped = a.runner.stop(5_000) // waits for the running delivery
    const late = await a.create('parcel', {}, { source: 'test' })
    t.equal((await a.send(late.id, { type: 'SHIP' }, { source: 'test' })).accepted, true, 'a request still in flight commits')
    await waitUntil('its effect is handed back', async () => (await effectJob(late.id)).status === 'pending')
    t.match(await effectJob(late.id), { status: 'pending', lease_owner: null }, 'free for another instance, long before its 60 s lease')
    t.equal(calls.length, 1, 'and not started here')
    calls[0]!.finish('Ada')
    await stopped
    t.equal((await row(busy.id)).state, 'delivered', 'the running effect finished within the grace period')
  })

  await t.test('LISTEN/NOTIFY: handed-back jobs are claimed and results seen at once, not at the next poll', async (t) => {
    const hour = 3_600_000
    const listening = (owner: string) =>
      createEngine({ sql: db.sql, definitions: [definition], sealer: identitySealer, log: silentLog, now: clock.now, owner, listen: true, pollMs: hour })
    const leaving = listening('leaving')
    const taker = listening('taker')
    const watcher = listening('watcher')
    const w = await leaving.create('parcel', {}, { source: 'test' })
    await leaving.send(w.id, { type: 'SHIP' }, { source: 'test' })
    await waitUntil('the run starts', () => calls.length === 1)
    taker.runner.start() // polls once an hour: only a notification can make it claim in time
    await Promise.all([taker.wakeups.start(), watcher.wakeups.start()])
    // The watcher polls once an hour too: it can only hear of the result by NOTIFY.
    const seen = watcher.waitFor(w.id, (x) => x.state === 'delivered', 10_000, hour)
    instant = 'Grace'
    await leaving.runner.stop(0) // hands the job back and notifies
    const result = await seen
    t.equal(result?.state, 'delivered', 'the watcher saw the result another engine committed')
    t.equal(result?.context.signedBy, 'Grace', 'from the run of the engine that took the handed-back job')
    await taker.runner.stop(0)
    await watcher.wakeups.stop()
  })

  await t.test('LISTEN/NOTIFY: a process waiting on its own effect hears it from its commit, not by reading the row again', async (t) => {
    const hour = 3_600_000
    let reads = 0
    const counted = postgres(db.url, {
      max: 4, onnotice: () => {},
      debug: (_conn, query) => { if (/from wix_engine\.workflows w where w\.id/.test(query)) reads++ },
    })
    t.teardown(() => counted.end())
    const solo = createEngine({ sql: counted, definitions: [definition], sealer: identitySealer, log: silentLog, now: clock.now, owner: 'solo', listen: true, pollMs: hour })
    await solo.wakeups.start()
    const notified: string[] = []
    solo.wakeups.on((payload) => notified.push(payload))
    const w = await solo.create('parcel', {}, { source: 'test' })
    await solo.send(w.id, { type: 'SHIP' }, { source: 'test' })
    await waitUntil('the run starts', () => calls.length === 1)
    const delivered = solo.waitFor(w.id, (x) => x.state === 'delivered', 10_000, hour)
    // Still waiting when the NOTIFY of the result arrives, whichever comes first; ended by hand.
    const stop = new AbortController()
    const lingering = solo.waitFor(w.id, () => false, 60_000, hour, stop.signal)
    calls[0]!.finish('Ada')
    t.equal((await delivered)?.state, 'delivered', 'the waiter saw the result')
    await waitUntil('the result is notified', () => notified.includes(`w:${w.id}:solo`))
    // A read the NOTIFY started would reach the driver within a few ticks: give it time to show.
    await new Promise((resolve) => setTimeout(resolve, 100))
    stop.abort()
    t.equal((await lingering)?.state, 'delivered', 'so did the one still waiting, from the same commit')
    t.equal(reads, 0, 'and neither read the row on its own NOTIFY')
    await solo.wakeups.stop()
  })

  await t.test("a waitFor predicate that throws ends that wait with its error, never the process", async (t) => {
    const a = engine('a')
    const w = await a.create('parcel', {}, { source: 'test' })
    const unhandled: unknown[] = []
    const onUnhandled = (err: unknown) => void unhandled.push(err)
    process.on('unhandledRejection', onUnhandled)
    t.teardown(() => void process.off('unhandledRejection', onUnhandled))
    let asked = 0
    const predicate = () => {
      if (++asked > 1) throw new Error('a bug in the caller')
      return false
    }
    await t.rejects(a.waitFor(w.id, predicate, 30_000, 20), /a bug in the caller/, "the wait rejects with the predicate's error")
    t.same(unhandled, [], 'and no rejection went unhandled')
    await a.send(w.id, { type: 'HOP' }, { source: 'test' }) // final: its timer leaves with it
  })

  await t.test('waitFor reads one at a time while the database is slow: its polls never pile up', async (t) => {
    const a = engine('a')
    const w = await a.create('parcel', {}, { source: 'test' })
    // Reads of workflows wait while this session holds the table: a database that does not answer.
    const holder = await db.sql.reserve()
    await holder`begin`
    await holder`lock table wix_engine.workflows in access exclusive mode`
    let released = false
    const release = async () => {
      if (released) return
      released = true
      await holder`rollback`
      holder.release()
    }
    t.teardown(release)
    // Asked on the holder's session (the pool may be full of waiting reads): inside its
    // transaction, pg_stat_activity is read afresh only after its snapshot is cleared.
    const reads = async () => Number((await holder`
      with fresh as (select pg_stat_clear_snapshot())
      select count(*)::int as n from fresh, pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and query like '%wix_engine.workflows%'`)[0]!.n)
    const left = new AbortController()
    const wait = a.waitFor(w.id, () => false, 60_000, 10, left.signal)
    await waitUntil('a poll waits on the database', async () => (await reads()) > 0)
    // Fifty polls' worth: each would have sent a read of its own.
    await new Promise((r) => setTimeout(r, 500))
    t.equal(await reads(), 1, 'one read waits; the polls behind it sent none')
    left.abort()
    await release()
    t.equal((await wait)?.id, w.id, 'the wait ends when its caller leaves')
    await a.send(w.id, { type: 'HOP' }, { source: 'test' }) // final: its timer leaves with it
  })

  await t.test('ticks that overlap never run more effects than the concurrency allows', async (t) => {
    const a = engine('a')
    await a.runner.stop(0) // what it commits from now on is handed back: pending, for anyone to claim
    const ids: string[] = []
    for (let i = 0; i < 6; i++) {
      const w = await a.create('parcel', {}, { source: 'test' })
      await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
      ids.push(w.id)
    }
    const b = engine('b', { concurrency: 4 }) // three effect slots, one kept for timers
    await Promise.all([1, 2, 3, 4, 5].map(() => b.runner.tick()))
    t.ok(calls.length <= 3, `${calls.length} effects started at once, within the three slots`)
    const [held] = await db.sql`
      select count(*)::int as n from wix_engine.workflows w, jsonb_array_elements(w.effects) e
      where e @> '{"owner": "b", "status": "running"}'`
    t.ok(held!.n <= 3, `and b holds ${held!.n} effect jobs, no more than it runs`)
    instant = 'Ada'
    calls.forEach((c) => c.finish('Ada'))
    await waitUntil('every parcel is delivered', async () => {
      await b.runner.tick()
      await b.runner.idle()
      return (await Promise.all(ids.map(row))).every((r) => r.state === 'delivered')
    })
  })

  await t.test('an instance with every effect slot busy hands new effects back: an idle one takes them at once', async (t) => {
    const a = engine('a', { concurrency: 4 })
    const b = engine('b')
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      const w = await a.create('parcel', {}, { source: 'test' })
      await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
      ids.push(w.id)
    }
    await waitUntil('the busy instance fills its three effect slots', () => calls.length === 3)
    await waitUntil('the idle instance claims the two it could not start', async () => {
      await b.runner.tick()
      return calls.length === 5
    })
    t.pass('the idle instance runs them while the busy one is still busy')
    t.same(calls.slice(3).map((c) => c.input.attempt), [1, 1],
      'as their first attempts: a hand-back is no run (a re-run would take a code for spent)')
    calls.forEach((c) => c.finish('Ada'))
    await a.runner.idle()
    await b.runner.idle()
    for (const id of ids) t.equal((await row(id)).state, 'delivered', 'every parcel is delivered')
  })

  await t.test('a lease renewal that hangs on a lock: the running effect is aborted once its lease is unconfirmed', async (t) => {
    const a = engine('a')
    const w = await a.create('parcel', {}, { source: 'test' })
    await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
    await waitUntil('the run starts', () => calls.length === 1)
    // Another session locks the workflow's row, where the effect's lease is: every renewal waits on that lock.
    const holder = await db.sql.reserve()
    await holder`begin`
    await holder`select id from wix_engine.workflows where id = ${w.id} for update`
    t.teardown(async () => {
      await holder`rollback`.catch(() => {})
      holder.release()
    })
    await waitUntil("the effect's signal is aborted", () => calls[0]!.signal.aborted)
    t.pass('the run stopped before another instance could take its job over')
    await holder`rollback`
    calls[0]!.finish('too late')
    await a.runner.idle()
    t.equal((await row(w.id)).state, 'delivering', "the aborted run's result did not land")
    await a.send(w.id, { type: 'CANCEL' }, { source: 'test' }) // its job goes with it
  })

  await t.test('renewals on a pool of their own: a stalled main pool does not abort a run that is fine', async (t) => {
    // Each engine gets one connection for its statements; the test stalls it while the effect runs.
    const pools = [postgres(db.url, { max: 1, onnotice: () => {} }), postgres(db.url, { max: 1, onnotice: () => {} })]
    t.teardown(() => Promise.all(pools.map((p) => p.end({ timeout: 1 }))))
    const [main, leases] = pools as [postgres.Sql, postgres.Sql]
    const a = createEngine({
      sql: main, leaseSql: leases, definitions: [definition], sealer: identitySealer, log: silentLog,
      now: clock.now, owner: 'a', leaseMs: 600, heartbeatMs: 100,
    })
    const w = await a.create('parcel', {}, { source: 'test' })
    await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
    await waitUntil('the run starts', () => calls.length === 1)
    // Longer than the whole lease: every renewal through `main` would wait behind it.
    await main`select pg_sleep(1.5)`
    t.notOk(calls[0]!.signal.aborted, 'the run kept its lease while the main pool was busy')
    calls[0]!.finish('Ada')
    await a.runner.idle()
    t.equal((await row(w.id)).state, 'delivered', 'its result landed')
    t.equal(calls.length, 1, 'the effect ran once')
  })

  await t.test('local and claimed effects share one budget; timers still get a slot', async (t) => {
    const a = engine('a', { concurrency: 4 })
    const ids = []
    for (let i = 0; i < 5; i++) {
      const w = await a.create('parcel', {}, { source: 'test' })
      await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
      ids.push(w.id)
    }
    await waitUntil('the effect slots fill', () => calls.length === 3)
    t.equal(calls.length, 3, 'three effects run at once, not five')
    const waiting = await a.create('parcel', {}, { source: 'test' })
    clock.advance(61_000)
    t.equal(await a.runner.tick(), 1, 'a due timer is claimed while effects fill their slots')
    await waitUntil('the timer fires', async () => (await row(waiting.id)).state === 'lost')
    calls.forEach((c) => c.finish('Ada'))
    await waitUntil('the queued effects start as slots free', () => calls.length === 5)
    calls.slice(3).forEach((c) => c.finish('Ada'))
    await a.runner.idle()
    for (const id of ids) t.equal((await row(id)).state, 'delivered')
  })
})
