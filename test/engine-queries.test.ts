import postgres from 'postgres'
import t from 'tap'
import { subscriptionWorkflow } from '../examples/subscription/workflow.ts'
import * as queries from '../src/engine/queries.ts'
import { createEngine } from '../src/index.ts'
import { freshDatabase, needsRealPostgres } from './support/database.ts'
import { identitySealer, NO_ORPHANS, orphans, silentLog, testClock } from './support/engine.ts'

/**
 * The engine's read and tidy-up API: what code outside the engine uses instead of its tables.
 * Run on the example subscription machine, so nothing here is installation-specific.
 */

const DAY = 24 * 60 * 60_000

t.test("reading and tidying the engine's workflows through its API", async (t) => {
  const db = await freshDatabase()
  t.teardown(db.drop)
  const clock = testClock()
  const engine = createEngine({
    sql: db.sql,
    definitions: [subscriptionWorkflow({ billing: { activate: async () => {} }, now: clock.now })],
    sealer: identitySealer,
    log: silentLog,
    now: clock.now,
  })
  const start = (customerId: string, paymentDeadlineMs = DAY) =>
    engine.create('subscription', { customerId, plan: 'basic', paymentDeadlineMs }, { source: 'test' })

  // a: cancelled; b: paid and active; c: waits; d: expires by its deadline; a2: a's second signup.
  const a = await start('a')
  clock.advance(1_000)
  const b = await start('b')
  clock.advance(1_000)
  const c = await start('c')
  clock.advance(1_000)
  const d = await start('d', 5_000)
  clock.advance(1_000)
  const a2 = await start('a')
  await engine.send(a.id, { type: 'CANCEL' }, { source: 'test' })
  await engine.send(b.id, { type: 'PAYMENT_RECEIVED', paymentId: 'p', amountCents: 100 }, { source: 'test' })
  await engine.runner.idle()
  clock.advance(10_000)
  await engine.runner.tick()
  await engine.runner.idle()

  const ids = (ws: { id: string }[]) => ws.map((w) => w.id)
  const sub = { machine: 'subscription' } as const

  t.test('list: filters and orders', async (t) => {
    t.same(ids(await engine.list(sub, { order: 'created', limit: 10 })), [a2.id, d.id, c.id, b.id, a.id], 'newest created first')
    t.same(ids(await engine.list({ ...sub, state: 'AwaitingPayment' }, { order: 'created', limit: 10 })), [a2.id, c.id], 'by state')
    t.same(ids(await engine.list({ ...sub, state: ['Expired', 'Cancelled'] }, { order: 'created', limit: 10 })), [d.id, a.id], 'by any of several states')
    t.same(ids(await engine.list({ ...sub, reason: 'payment_deadline' }, { order: 'updated', limit: 10 })), [d.id], 'by failure reason')
    t.same(ids(await engine.list({ ...sub, key: 'a' }, { order: 'created', limit: 10 })), [a2.id, a.id], 'by key')
    t.same(ids(await engine.list({ ...sub, key: 'a', active: true }, { order: 'created', limit: 10 })), [a2.id], 'only those not yet final')
    t.same(ids(await engine.list({ ...sub, ended: true }, { order: 'created', limit: 10 })), [d.id, a.id], 'only those in a final state')
    t.same(ids(await engine.list({ ...sub, context: { plan: 'basic', customerId: 'c' } }, { order: 'created', limit: 10 })), [c.id], 'by context fields')
    t.same(await engine.list({ machine: 'other' as never }, { order: 'created', limit: 10 }), [], "another machine's list is its own")
    const window = { ...sub, createdFrom: new Date(b.createdAt), createdTo: new Date(d.createdAt) }
    t.same(ids(await engine.list(window, { order: 'created', limit: 10 })), [c.id, b.id], 'a creation window, end excluded')
    const [first] = await engine.list(sub, { order: 'created', limit: 1 })
    t.same(ids(await engine.list(sub, { order: 'created', limit: 2, after: { at: first!.createdAt, id: first!.id } })), [d.id, c.id], 'the next page by keyset')
  })

  t.test('find: by id, or the newest by key', async (t) => {
    t.equal((await engine.find('subscription', a.id))?.id, a.id)
    t.equal((await engine.find('subscription', 'a'))?.id, a2.id, 'a key names its newest workflow')
    t.equal(await engine.find('other' as never, a.id), undefined, 'not as another machine')
    t.equal(await engine.find('subscription', 'nobody'), undefined)
  })

  t.test('counts and the queue', async (t) => {
    const counts = await engine.counts('subscription')
    const byState = Object.fromEntries(counts.map((c) => [`${c.state}/${c.reason ?? '-'}`, c.n]))
    t.same(byState, { 'AwaitingPayment/-': 2, 'Active/-': 1, 'Cancelled/cancelled': 1, 'Expired/payment_deadline': 1 })
    const queue = await engine.queue()
    t.match(queue, { timer: 2, effect: 0, waiting: 0, running: 0, oldest: null }, "the two waiting subscriptions' deadlines, none due")
    clock.advance(DAY)
    t.match(await engine.queue(), { timer: 2, waiting: 2, oldest: Date }, 'a day on, both deadlines are due')
  })

  t.test('tidying: compaction keeps the workflow, deletion honours the caller keeping some', async (t) => {
    const cutoff = new Date(clock.now().getTime() + 1)
    const compacted = await queries.compactWorkflows(db.sql, { ...sub, state: 'Active', updatedBefore: cutoff }, queries.START, 10)
    t.match(compacted, { workflows: 1, history: 3, jobs: 0 },
      "the active subscription's history goes (its activation, done by its first run, left no job; its deadline, cancelled, was never one)")
    t.same(await engine.history(b.id), [], 'its history is gone')
    t.equal((await engine.get(b.id))?.state, 'Active', 'the workflow stays')

    // The cancelled one also has a job that ended after a failed run (the engine's rows, made by hand).
    const job = '0b6f3c1e-2d4a-4e5f-8a9b-1c2d3e4f5a6b'
    await db.sql`
      insert into wix_engine.jobs (id, workflow_id, kind, name, src, status, attempts, run_at, created_at, updated_at)
      values (${job}, ${a.id}, 'effect', 'activate', 'activate', 'failed', 1, now(), now(), now())`
    await db.sql`
      insert into wix_engine.job_attempts (job_id, attempt, workflow_id, outcome, started_at, finished_at)
      values (${job}, 1, ${a.id}, 'failed', now(), now())`
    t.ok((await engine.history(a.id)).length >= 2, 'the cancelled one has its history')

    const ended = { ...sub, state: ['Cancelled', 'Expired'], updatedBefore: cutoff }
    const kept = await queries.deleteWorkflows(db.sql, ended, 10, (id) => db.sql`${id} = ${d.id}::uuid`)
    t.equal(kept, 1, 'one deleted, the one the caller keeps is not')
    t.equal(await engine.get(a.id), undefined, 'the cancelled one is gone')
    t.same(await orphans(db.sql), NO_ORPHANS, 'with its history, its job and its attempt: nothing of it is left')
    t.equal((await engine.get(d.id))?.state, 'Expired', 'the kept one stays')
    t.ok((await engine.history(d.id)).length >= 2, 'with its history')
  })

  t.test('a workflow that moves while a delete looks at it is left whole, and goes next time', { skip: needsRealPostgres('two sessions') }, async (t) => {
    const e = await start('e')
    const deleter = postgres(db.url, { max: 1, onnotice: () => {} })
    const gate = postgres(db.url, { max: 1, onnotice: () => {} })
    t.teardown(() => Promise.all([deleter.end(), gate.end()]))
    // The delete's statement begins (its snapshot), then waits at the gate (an advisory lock this
    // test holds) on each row before locking it; meanwhile the workflow moves on, writing a
    // history row the delete's snapshot does not hold.
    const GATE = 30_030
    await gate`select pg_advisory_lock(${GATE})`
    const deleting = queries.deleteWorkflows(deleter, { ...sub, key: 'e' }, 10,
      () => deleter`(select false from pg_advisory_xact_lock_shared(${GATE}))`)
    while (!(await db.sql`select 1 from pg_locks where locktype = 'advisory' and objid = ${GATE} and not granted`).length) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    await engine.send(e.id, { type: 'CANCEL' }, { source: 'test' })
    await gate`select pg_advisory_unlock(${GATE})`
    t.equal(await deleting, 0, 'the delete skips it: the version it would lock is not the one it saw')
    t.equal((await engine.get(e.id))?.state, 'Cancelled', 'the workflow is there')
    t.same((await engine.history(e.id)).map((h) => h.to_state), ['AwaitingPayment', 'Cancelled'], 'with all its history')
    t.equal(await queries.deleteWorkflows(deleter, { ...sub, key: 'e' }, 10), 1, 'the next delete takes it')
    t.same(await orphans(db.sql), NO_ORPHANS, 'and everything of it')
  })
})

// Compile-time: `list` and `find` take only the engine's own machine names.
export function typeChecks(engine: ReturnType<typeof createEngine<[ReturnType<typeof subscriptionWorkflow>]>>) {
  // @ts-expect-error: no such machine
  void engine.list({ machine: 'nope' }, { order: 'created', limit: 1 })
  // @ts-expect-error: no such machine
  void engine.find('nope', 'x')
}
