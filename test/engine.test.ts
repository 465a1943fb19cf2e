import t from 'tap'
import { assign, fromPromise, setup } from 'xstate'
import { createEngine, defineWorkflow } from '../src/engine/index.ts'
import { connect } from '../src/db/connect.ts'
import { freshDatabase, needsRealPostgres } from './support/database.ts'
import { waitUntil } from './support/process.ts'
import { effectJob, testClock, silentLog, identitySealer } from './support/engine.ts'

/**
 * The engine with a machine of its own (a parcel delivery), proving it is generic: nothing in the
 * engine knows about installations.
 */
let deliverCalls = 0
/** The `attempt` the engine added to each run's input. */
let deliverAttempts: unknown[] = []
let deliverBehaviour: () => Promise<{ signedBy: string }> = async () => ({ signedBy: 'Ada' })

const parcel = setup({
  types: { input: {} as { id: string }, context: {} as { id: string; signedBy: string | null; why: string | null } },
  actors: {
    deliver: fromPromise<{ signedBy: string }, { address: string; attempt?: number }>(async ({ input }) => {
      deliverCalls++
      deliverAttempts.push(input.attempt)
      return deliverBehaviour()
    }),
  },
}).createMachine({
  id: 'parcel',
  context: ({ input }) => ({ id: input.id, signedBy: null, why: null }),
  initial: 'packed',
  states: {
    packed: { on: { SHIP: 'delivering' }, after: { 60_000: { target: 'lost', actions: assign({ why: 'never shipped' }) } } },
    delivering: {
      invoke: {
        id: 'deliver',
        src: 'deliver',
        input: () => ({ address: 'Main St 1' }),
        onDone: { target: 'delivered', actions: assign({ signedBy: ({ event }) => event.output.signedBy }) },
        onError: { target: 'lost', actions: assign({ why: ({ event }) => (event.error as { code: string }).code }) },
      },
    },
    delivered: { type: 'final' },
    lost: { type: 'final' },
  },
})

const definition = defineWorkflow({
  name: 'parcel',
  version: 1,
  machine: parcel,
  project: (s) => ({ key: null, reason: (s.context.why as string | null) ?? null }),
  retry: { maxAttempts: 3, baseDelayMs: 1_000, maxDelayMs: 4_000 },
})

t.test('the engine, on a real Postgres', async (t) => {
  const db = await freshDatabase()
  t.teardown(db.drop)
  const clock = testClock()
  const engine = (owner = 'a') =>
    createEngine({ sql: db.sql, definitions: [definition], sealer: identitySealer, log: silentLog, now: clock.now, owner })
  const a = engine('a')
  const jobs = (id: string) => db.sql`select kind, status, attempts from wix_engine.jobs where workflow_id = ${id} order by kind`

  t.beforeEach(() => {
    deliverCalls = 0
    deliverAttempts = []
    deliverBehaviour = async () => ({ signedBy: 'Ada' })
  })

  await t.test('create writes the row, its first history entry and its timer', async (t) => {
    const w = await a.create('parcel', {}, { source: 'test' })
    t.equal(w.state, 'packed', 'starts in its initial state')
    const [row] = await db.sql`select machine, machine_version, version, state from wix_engine.workflows where id = ${w.id}`
    t.match(row, { machine: 'parcel', machine_version: 1, version: 1, state: 'packed' }, 'one row with machine, version and state')
    const [stored] = await db.sql`select timers, wake_at from wix_engine.workflows where id = ${w.id}`
    t.match(stored!.timers, [{ name: /^xstate\.after\.60000\./, run_at: new Date(clock.now().getTime() + 60_000).toISOString() }],
      'the 60 s delay is stored with the row, not an in-memory timeout')
    t.same(stored!.wake_at, new Date(clock.now().getTime() + 60_000), 'and the row says when it next wakes')
    t.same(await jobs(w.id), [], 'no job row until the timer is due')
  })

  await t.test('an event runs the effect after commit and feeds its result back', async (t) => {
    const w = await a.create('parcel', {}, { source: 'test' })
    const r = await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
    t.equal(r.accepted, true, 'SHIP is accepted')
    await a.runner.idle()
    const done = await a.get(w.id)
    t.equal(done?.state, 'delivered', 'the effect result moved the workflow on')
    t.equal(done?.context.signedBy, 'Ada', 'with the effect output in context')
    t.equal(deliverCalls, 1, 'the effect ran once')
    t.same(await jobs(w.id), [], 'the effect job, done by its first run, is deleted as it ends (history tells its result)')
    t.match(await db.sql`select timers, wake_at from wix_engine.workflows where id = ${w.id}`, [{ timers: [], wake_at: null }],
      'leaving packed cancelled its timer, in the same write')
    const history = await a.history(w.id)
    t.same(history.map((h) => [h.event_type, h.from_state, h.to_state]), [
      ['xstate.init', null, 'packed'],
      ['SHIP', 'packed', 'delivering'],
      ['xstate.done.actor.deliver', 'delivering', 'delivered'],
    ], 'history records every accepted event with from and to')
    t.same(history.map((h) => h.source), ['test', 'test', 'effect:deliver'], 'and who sent it')
  })

  await t.test('an event the state does not accept changes nothing', async (t) => {
    const w = await a.create('parcel', {}, { source: 'test' })
    const r = await a.send(w.id, { type: 'NONSENSE' }, { source: 'test' })
    t.equal(r.accepted, false, 'rejected')
    const [row] = await db.sql`select version from wix_engine.workflows where id = ${w.id}`
    t.equal(row!.version, 1, 'the version did not move')
  })

  await t.test('an event meant for another machine does not reach this one', async (t) => {
    const w = await a.create('parcel', {}, { source: 'test' })
    await t.rejects(a.send(w.id, { type: 'SHIP' }, { source: 'test', machine: 'installation' }), { code: 'WORKFLOW_NOT_FOUND' }, 'reads as not found')
    const [row] = await db.sql`select state, version from wix_engine.workflows where id = ${w.id}`
    t.match(row, { state: 'packed', version: 1 }, 'the parcel did not move')
    t.equal((await a.send(w.id, { type: 'SHIP' }, { source: 'test', machine: 'parcel' })).accepted, true, 'its own machine name passes')
    await a.runner.idle() // the delivery it started ends here, not in the next test
  })

  await t.test('20 concurrent identical events: exactly one accepted, one effect run', async (t) => {
    const w = await a.create('parcel', {}, { source: 'test' })
    const b = engine('b')
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).send(w.id, { type: 'SHIP' }, { source: 'test' })),
    )
    await Promise.all([a.runner.idle(), b.runner.idle()])
    t.equal(results.filter((r) => r.accepted).length, 1, 'one SHIP accepted across two engines')
    t.equal(deliverCalls, 1, 'the effect ran exactly once')
    t.equal((await a.get(w.id))?.state, 'delivered', 'and the workflow finished')
  })

  await t.test('retryable failures are retried with backoff, then succeed', async (t) => {
    let failures = 2
    deliverBehaviour = async () => {
      if (failures-- > 0) throw Object.assign(new Error('busy'), { code: 'BUSY', retryable: true })
      return { signedBy: 'Grace' }
    }
    const w = await a.create('parcel', {}, { source: 'test' })
    await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
    await a.runner.idle()
    t.equal((await a.get(w.id))?.state, 'delivering', 'still delivering after the first failure')
    t.equal(await a.runner.tick(), 0, 'the retry is not due before its backoff')
    clock.advance(2_000)
    t.equal(await a.runner.tick(), 1, 'due after the backoff')
    await a.runner.idle()
    clock.advance(4_000)
    await a.runner.tick()
    await a.runner.idle()
    t.equal((await a.get(w.id))?.context.signedBy, 'Grace', 'the third attempt succeeded')
    const attempts = await db.sql`select attempt, outcome from wix_engine.job_attempts where workflow_id = ${w.id} order by attempt`
    t.same(attempts.map((r) => [r.attempt, r.outcome]), [[1, 'retry'], [2, 'retry'], [3, 'ok']],
      'each failed attempt is recorded with its outcome, and the success after them')
    t.same(await jobs(w.id), [], 'no job row is left: the effect lived in its workflow\'s row, and left it with its result')
    const [row] = await db.sql`select effects from wix_engine.workflows where id = ${w.id}`
    t.same(row!.effects, [], 'nor is it in the row')
    t.same(deliverAttempts, [1, 2, 3], 'each run is told which attempt it is')
  })

  await t.test('a final failure goes straight to the machine; exhausted retries too', async (t) => {
    deliverBehaviour = async () => { throw Object.assign(new Error('no such street'), { code: 'BAD_ADDRESS', retryable: false }) }
    const w = await a.create('parcel', {}, { source: 'test' })
    await a.send(w.id, { type: 'SHIP' }, { source: 'test' })
    await a.runner.idle()
    const lost = await a.get(w.id)
    t.equal(lost?.state, 'lost', 'a final error ends the delivery')
    t.equal(lost?.reason, 'BAD_ADDRESS', 'with the reason projected into its column')
    t.equal(deliverCalls, 1, 'after exactly one call')

    deliverCalls = 0
    deliverBehaviour = async () => { throw new Error('flaky') }
    const w2 = await a.create('parcel', {}, { source: 'test' })
    await a.send(w2.id, { type: 'SHIP' }, { source: 'test' })
    for (let i = 0; i < 5; i++) {
      await a.runner.idle()
      clock.advance(10_000)
      await a.runner.tick()
    }
    await a.runner.idle()
    t.equal((await a.get(w2.id))?.state, 'lost', 'retries exhausted end it too')
    t.equal(deliverCalls, 3, 'after the budget of 3 attempts')
  })

  await t.test('timers are stored: they fire when the clock passes them, from any engine', async (t) => {
    const w = await engine('setter').create('parcel', {}, { source: 'test' })
    const b = engine('b')
    clock.advance(59_000)
    await b.runner.tick()
    t.equal((await b.get(w.id))?.state, 'packed', 'not before its time')
    clock.advance(2_000)
    await b.runner.tick()
    // b's tick, or a's wake-up for an earlier test's retry (a real timer) if that came first.
    await waitUntil('the timer fired', async () => (await b.get(w.id))?.state === 'lost')
    const lost = await b.get(w.id)
    t.equal(lost?.state, 'lost', 'fired by another engine than the one that set it')
    t.equal(lost?.context.why, 'never shipped', 'with the timeout recorded')
  })

  await t.test('a job whose runner died is run by another engine once its lease expires', { skip: needsRealPostgres('a second connection that dies') }, async (t) => {
    let release!: () => void
    deliverBehaviour = () => new Promise((resolve) => (release = () => resolve({ signedBy: 'late' })))
    // The dying engine has a connection of its own, ended below: as if its process were killed.
    const dyingSql = connect(db.url, { max: 2 })
    const leaseMs = 400
    const dying = createEngine({ sql: dyingSql, definitions: [definition], sealer: identitySealer, log: silentLog, now: clock.now, owner: 'dying', leaseMs })
    const w = await dying.create('parcel', {}, { source: 'test' })
    await dying.send(w.id, { type: 'SHIP' }, { source: 'test' })
    deliverBehaviour = async () => ({ signedBy: 'rescuer' })
    const b = createEngine({ sql: db.sql, definitions: [definition], sealer: identitySealer, log: silentLog, now: clock.now, owner: 'b', leaseMs })
    t.equal(await b.runner.tick(), 0, 'the leased job is left alone while its lease runs')
    await dyingSql.end({ timeout: 0 })
    // No clock is moved: the lease runs out on the database's clock once no heartbeat renews it.
    // b polls; any other live engine of this file (a's retry wake-ups) may claim it just as well.
    const claimedAgain = async () => {
      await b.runner.tick()
      // gone from the row: its result landed, and only a live engine could have run it
      const job = await effectJob(db.sql, w.id)
      return job === undefined || job.attempts >= 2
    }
    await waitUntil('another engine claims the job', claimedAgain)
    await waitUntil('the rescue finishes the workflow', async () => (await b.get(w.id))?.state === 'delivered')
    t.equal((await b.get(w.id))?.context.signedBy, 'rescuer', 'which finished the workflow')
    release()
    await dying.runner.idle()
    t.equal((await b.get(w.id))?.context.signedBy, 'rescuer', "the dead runner's late result is discarded")
    t.same(await db.sql`select attempt, outcome from wix_engine.job_attempts where workflow_id = ${w.id}`, [{ attempt: 2, outcome: 'ok' }],
      'no run is recorded as failed: the job was done by the rescue, its second run')
  })

  await t.test('a snapshot from an unknown machine version is refused, not misread', async (t) => {
    const w = await a.create('parcel', {}, { source: 'test' })
    await db.sql`update wix_engine.workflows set machine_version = 99 where id = ${w.id}`
    await t.rejects(a.send(w.id, { type: 'SHIP' }, { source: 'test' }), { code: 'MACHINE_VERSION_UNSUPPORTED' }, 'refused with a named error')
  })
})
