import { randomUUID } from 'node:crypto'
import t from 'tap'
import postgres from 'postgres'
import { assign, setup } from 'xstate'
import { defineWorkflow, persistently } from '../src/engine/index.ts'
import { isDatabaseUnavailable, isTransientDatabaseError } from '../src/db/connect.ts'
import { createEngineCore } from '../src/engine/engine.ts'
import { promoteTimers, renewLeases } from '../src/engine/job-store.ts'
import { commitBatch, readWorkflow, type Transition, type WorkflowRow } from '../src/engine/store.ts'
import { createWriter } from '../src/engine/writer.ts'
import { databaseGate, freshDatabase, needsRealPostgres } from './support/database.ts'
import { waitUntil } from './support/process.ts'
import { identitySealer, silentLog, testClock } from './support/engine.ts'

/**
 * Group commit: writes of different workflows that arrive together share one statement and
 * one commit, yet each is fenced, answered and failed on its own. Commits are told apart by
 * `xmin`: rows written by the same transaction carry the same one.
 */

const counter = setup({ types: { context: {} as { ticks: number } } }).createMachine({
  id: 'counter',
  context: { ticks: 0 },
  initial: 'open',
  states: {
    open: {
      on: { TICK: { actions: assign({ ticks: ({ context }) => context.ticks + 1 }) }, CLOSE: 'closed' },
      // a timer for CLOSE to cancel: each transition's own cancelled jobs come back to it
      after: { 60_000: 'closed' },
    },
    closed: { type: 'final' },
  },
})
const definition = defineWorkflow({ name: 'counter', version: 1, machine: counter, project: () => ({ key: null, reason: null }) })

/** Raises for a history row holding an event of `eventType`: a write the database refuses, in any batch. */
const refuse = (eventType: string) => `
  create or replace function wix_engine.refuse() returns trigger language plpgsql as $$
  begin raise exception 'refused ${eventType}'; end $$;
  drop trigger if exists refuse on wix_engine.workflow_history;
  create trigger refuse before insert on wix_engine.workflow_history
    for each row when (new.events @> '[{"event_type": "${eventType}"}]') execute function wix_engine.refuse();`

/** A history row with a SLOW event holds its statement for a minute: a database that does not answer. */
async function holdSlowWrites(t: { teardown(fn: () => unknown): void }, sql: postgres.Sql) {
  await sql.unsafe(`
    create or replace function wix_engine.slow() returns trigger language plpgsql as $$
    begin perform pg_sleep(60); return new; end $$;
    create trigger slow before insert on wix_engine.workflow_history
      for each row when (new.events @> '[{"event_type": "SLOW"}]') execute function wix_engine.slow();`)
  t.teardown(() => sql.unsafe('drop trigger if exists slow on wix_engine.workflow_history'))
}

t.test('group commit, on a real database', async (t) => {
  const db = await freshDatabase()
  t.teardown(db.drop)
  const clock = testClock()
  const engine = createEngineCore({ sql: db.sql, definitions: [definition], sealer: identitySealer, log: silentLog, now: clock.now })
  const start = (n: number) => Promise.all(Array.from({ length: n }, () => engine.create('counter', {}, { source: 'test' })))
  /** `n` new workflows, and their stored rows to hand-make writes from. */
  const startStored = async (n: number) => {
    const ids = (await start(n)).map((w) => w.id)
    return { ids, stored: await Promise.all(ids.map((id) => readWorkflow(db.sql, id))) }
  }
  const rows = (ids: string[]) =>
    db.sql<{ id: string; version: number; xmin: string }[]>`
      select id, version, xmin::text from wix_engine.workflows where id = any(${ids}::uuid[]) order by id`
  const historyCount = async (ids: string[]) =>
    (await db.sql<{ n: number }[]>`select count(*)::int as n from wix_engine.workflow_events where workflow_id = any(${ids}::uuid[])`)[0]!.n
  /** A hand-made accepted event of a stored row, fenced by `version`. */
  const step = (row: WorkflowRow, version = row.version, eventType = 'TICK'): Transition => ({
    id: row.id, version, machineVersion: row.machine_version, writtenMachineVersion: row.machine_version,
    state: row.state, key: row.key, reason: row.reason, snapshot: row.snapshot,
    history: [{ seq: version + 1, event_type: eventType, event: { type: eventType }, from_state: row.state, to_state: row.state, source: 'test' }],
    now: clock.now(), effects: [], timers: [],
    activeInvokes: [], respawned: [], cancelledTimers: [],
  })

  await t.test('workflows sending at once share commits, and each caller hears only after its commit', async (t) => {
    const started = await start(40)
    const ids = started.map((w) => w.id)
    t.ok(new Set((await rows(ids)).map((r) => r.xmin)).size < 40, '40 creates made fewer than 40 commits')

    // Another connection: what a reader elsewhere sees the moment each send is answered.
    const reader = postgres(db.url, { max: 1, onnotice: () => {} })
    t.teardown(() => reader.end())
    const seen = await Promise.all(ids.map(async (id) => {
      const r = await engine.send(id, { type: 'TICK' }, { source: 'test' })
      const [row] = await reader<{ version: number }[]>`select version from wix_engine.workflows where id = ${id}`
      return { accepted: r.accepted, version: row!.version }
    }))
    t.ok(seen.every((s) => s.accepted && s.version === 2), 'every send was accepted and its write was visible when it resolved')
    const after = await rows(ids)
    t.ok(after.every((r) => r.version === 2), 'each row moved on once')
    t.ok(new Set(after.map((r) => r.xmin)).size < 40, '40 events made fewer than 40 commits')
    t.equal(await historyCount(ids), 80, 'each workflow has its start and its event in history')
  })

  await t.test('the batched write is planned once, not anew for each batch, as its tables grow', {
    skip: needsRealPostgres('a session of its own, whose prepared statements it reads'),
  }, async (t) => {
    // One connection: a prepared statement's plans, and pg_prepared_statements, are its session's.
    const one = postgres(db.url, { max: 1, onnotice: () => {} })
    t.teardown(() => one.end())
    const writer = createWriter(one)
    const plans = async () => (await one<{ custom: number; generic: number }[]>`
      select custom_plans::int as custom, generic_plans::int as generic from pg_prepared_statements
      where statement like '%insert into wix_engine.workflow_history%' and statement not like '%pg_prepared_statements%'`)[0]
    const writeEach = async (n: number) => {
      for (const row of (await startStored(n)).stored) await writer.commit(step(row!)) // one write a batch
    }
    // Its first plans made at small tables whose statistics say so (a vacuum analyzes them early).
    await db.sql`analyze wix_engine.workflows`
    await db.sql`analyze wix_engine.jobs`
    await writeEach(8)
    // The tables grow and are analyzed (a vacuum does it): the cached plan is made again. Its cost
    // at the new size against the first custom plans' at the old: the write as it was (ids in plain
    // arrays) lost that comparison here and was planned on each of the forty executions after.
    const filler = await db.sql<{ id: string }[]>`
      insert into wix_engine.workflows (id, machine, machine_version, key, state, reason, snapshot, version, created_at, updated_at)
      select gen_random_uuid(), machine, machine_version, key, state, reason, snapshot, version, created_at, updated_at
      from wix_engine.workflows, generate_series(1, 20000) limit 20000
      returning id`
    t.teardown(async () => {
      const ids = filler.map((f) => f.id)
      await db.sql`delete from wix_engine.jobs where workflow_id = any(${ids}::uuid[])`
      await db.sql`delete from wix_engine.workflows where id = any(${ids}::uuid[])`
    })
    // Each with a running timer job and a running effect (in its row), held elsewhere.
    await db.sql`
      insert into wix_engine.jobs (id, workflow_id, kind, name, status, attempts, run_at, lease_owner, lease_until, created_at, updated_at)
      select gen_random_uuid(), id, 'timer', 'filler', 'running', 1, now(), 'elsewhere', now() + interval '1 hour', now(), now()
      from wix_engine.workflows where id = any(${filler.map((f) => f.id)}::uuid[])`
    await db.sql`
      update wix_engine.workflows
      set effects = jsonb_build_array(jsonb_build_object('id', gen_random_uuid(), 'name', 'filler', 'src', 'filler', 'status', 'running',
                                                         'attempts', 1, 'owner', 'elsewhere', 'lease_until', now() + interval '1 hour')),
          effect_due_at = now() + interval '1 hour'
      where id = any(${filler.map((f) => f.id)}::uuid[])`
    await db.sql`analyze wix_engine.workflows`
    await db.sql`analyze wix_engine.jobs`
    const before = (await plans())!
    t.ok(before.custom <= 5, `planned for its parameters only in Postgres's five trials (${before.custom} times)`)
    await writeEach(40)
    const after = (await plans())!
    t.equal(after.custom, before.custom, 'and never again once the tables grew')
    t.ok(after.generic - before.generic >= 40, `the forty later batches ran on the one plan for any parameters (${after.generic - before.generic})`)
  })

  await t.test('a fence miss in a batch fails only that write', async (t) => {
    const { ids, stored } = await startStored(3)
    const writer = createWriter(db.sql)
    const results = await Promise.all([
      writer.commit(step(stored[0]!)),
      writer.commit(step(stored[1]!, 7)), // decided on a version the row never had
      writer.commit(step(stored[2]!)),
    ])
    t.same(results.map((r) => r.written), [true, false, true], 'the stale write matched nothing, its neighbours landed')
    const after = await rows(ids)
    t.same(ids.map((id) => after.find((r) => r.id === id)!.version), [2, 1, 2], 'the stale row is untouched')
    t.equal(new Set([after.find((r) => r.id === ids[0])!.xmin, after.find((r) => r.id === ids[2])!.xmin]).size, 1,
      'the two that landed share one commit')
    t.equal(await historyCount(ids), 5, 'history has the two landed events and no third')
  })

  await t.test("a result whose run lost its job to another claim fails alone in its batch", async (t) => {
    const { ids, stored } = await startStored(3)
    // Each workflow with an effect its run holds (owner 'me', first claim), as a runner leaves it.
    const jobs = ids.map(() => randomUUID())
    const effect = (id: string, owner: string, attempts: number) =>
      [{ id, name: 'work', src: 'work', status: 'running', attempts, owner, lease_until: new Date(Date.now() + 60_000).toISOString() }]
    for (const [i, id] of ids.entries()) {
      // The fault: the second run's lease ran out and another instance claimed the job meanwhile.
      const held = i === 1 ? effect(jobs[i]!, 'thief', 2) : effect(jobs[i]!, 'me', 1)
      await db.sql`update wix_engine.workflows set effects = ${db.sql.json(held)}::jsonb, effect_due_at = now() + interval '1 minute' where id = ${id}`
    }
    const result = (row: WorkflowRow, i: number): Transition => ({
      ...step(row, row.version, 'xstate.done.actor.work'),
      job: {
        lease: { id: jobs[i]!, workflowId: row.id, kind: 'effect', name: 'work', owner: 'me', epoch: 1 },
        attempt: { attempt: 1, outcome: 'ok', started_at: clock.now(), error: null },
      },
    })
    const writer = createWriter(db.sql)
    const results = await Promise.all(stored.map((row, i) => writer.commit(result(row!, i))))
    t.same(results.map((r) => r.written), [true, false, true], "the stolen run's result matched nothing; its neighbours' landed")
    const after = await rows(ids)
    t.same(ids.map((id) => after.find((r) => r.id === id)!.version), [2, 1, 2], 'its workflow is untouched')
    t.equal(await historyCount(ids), 5, 'history has the two results, not the third')
    const left = await db.sql<{ id: string; owner: string; status: string }[]>`
      select e->>'id' as id, e->>'owner' as owner, e->>'status' as status
      from wix_engine.workflows w, jsonb_array_elements(w.effects) e where w.id = any(${ids}::uuid[])`
    t.same(left, [{ id: jobs[1], owner: 'thief', status: 'running' }], 'the effects done by their runs are gone; the stolen one stays with its new owner')
  })

  await t.test('a heartbeat and a batched write sharing rows do not deadlock: both lock in id order', {
    skip: needsRealPostgres('three sessions and their lock waits'),
  }, async (t) => {
    const { ids } = await startStored(2)
    const [low, high] = [...ids].sort() as [string, string]
    const runs: { id: string; workflowId: string; kind: 'effect'; epoch: number }[] = []
    for (const id of [high, low]) { // the heartbeat's own order: the higher id first
      const e = { id: randomUUID(), name: 'work', src: 'work', status: 'running', attempts: 1, owner: 'me', lease_until: new Date(Date.now() + 60_000).toISOString() }
      await db.sql`update wix_engine.workflows set effects = ${db.sql.json([e])}::jsonb, effect_due_at = now() + interval '1 minute' where id = ${id}`
      runs.push({ id: e.id, workflowId: id, kind: 'effect', epoch: 1 })
    }
    const waiting = (n: number) => async () => (await db.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)[0]!.n >= n
    // Another session holds the lower row: the batch waits on it first, then the heartbeat does.
    const holder = await db.sql.reserve()
    await holder`begin`
    await holder`select 1 from wix_engine.workflows where id = ${low} for update`
    const rowsNow = await Promise.all([low, high].map((id) => readWorkflow(db.sql, id)))
    const batch = commitBatch(db.sql, { creates: [], transitions: rowsNow.map((row, i) => ({ i, t: { ...step(row!), activeInvokes: ['work'] } })) })
    await waitUntil('the batch waits for the lower row', waiting(1))
    const heartbeat = renewLeases(db.sql, 'me', runs, 60_000)
    await waitUntil('the heartbeat waits too', waiting(2))
    await holder`commit`
    holder.release()
    const [written, renewed] = await Promise.allSettled([batch, heartbeat])
    t.equal(written.status, 'fulfilled', 'the batch lands, with no deadlock to resend')
    t.equal(renewed.status, 'fulfilled', 'and the heartbeat too')
    t.same(renewed.status === 'fulfilled' ? [...renewed.value].sort() : [], runs.map((r) => r.id).sort(), 'renewing both leases')
  })

  await t.test('each transition of a batch gets back the jobs it cancelled', async (t) => {
    const ids = (await start(2)).map((w) => w.id)
    // Their timers, due and moved into jobs (no runner runs here to fire them).
    clock.advance(61_000)
    await promoteTimers(db.sql, clock.now(), 1_000)
    const timers = await db.sql<{ id: string; workflow_id: string; name: string }[]>`
      select id, workflow_id, name from wix_engine.jobs where workflow_id = any(${ids}::uuid[]) and kind = 'timer'`
    t.equal(timers.length, 2, 'each has its due timer as a job')
    const stored = await Promise.all(ids.map((id) => readWorkflow(db.sql, id)))
    const writer = createWriter(db.sql)
    const close = (row: WorkflowRow) => ({ ...step(row, row.version, 'CLOSE'), to: 'closed', cancelledTimers: [timers[0]!.name] })
    const results = await Promise.all(stored.map((row) => writer.commit(close(row!))))
    for (const [i, id] of ids.entries()) {
      t.same(results[i]!.cancelled, timers.filter((j) => j.workflow_id === id).map((j) => j.id), `workflow ${i + 1} hears of its own timer only`)
    }
  })

  await t.test('a timer moved into jobs after a transition was decided stays moved when it lands', async (t) => {
    const [w] = await start(1)
    const stale = await readWorkflow(db.sql, w!.id) // read while the timer is still in the row
    clock.advance(61_000)
    await promoteTimers(db.sql, clock.now(), 1_000)
    const writer = createWriter(db.sql)
    t.equal((await writer.commit(step(stale!))).written, true, 'the TICK lands')
    const [row] = await db.sql`select timers, wake_at from wix_engine.workflows where id = ${w!.id}`
    t.same([row!.timers, row!.wake_at], [[], null], 'the row holds no timer: the write changed timers, it did not restore a list')
    const [{ n }] = await db.sql`
      select count(*)::int as n from wix_engine.jobs where workflow_id = ${w!.id} and kind = 'timer' and status = 'pending'`
    t.equal(n, 1, 'the timer waits in jobs, once')
  })

  await t.test("a timer set again under a name the row holds replaces it; one cancelled leaves", async (t) => {
    const { ids, stored } = await startStored(1)
    const [{ timers: [held] }] = await db.sql<{ timers: { id: string; name: string }[] }[]>`select timers from wix_engine.workflows where id = ${ids[0]!}`
    const again = { id: randomUUID(), name: held!.name, event: { type: 'CLOSE' }, run_at: new Date(clock.now().getTime() + 120_000).toISOString() }
    const writer = createWriter(db.sql)
    t.equal((await writer.commit({ ...step(stored[0]!), timers: [again] })).written, true, 'the write lands')
    const timersOf = async () => (await db.sql<{ timers: { id: string }[]; wake_at: Date | null }[]>`
      select timers, wake_at from wix_engine.workflows where id = ${ids[0]!}`)[0]!
    const replaced = await timersOf()
    t.same([replaced.timers.map((x) => x.id), replaced.wake_at], [[again.id], new Date(again.run_at)], 'one timer of that name: the new one, and the row wakes for it')
    const next = (await readWorkflow(db.sql, ids[0]!))!
    t.equal((await writer.commit({ ...step(next), cancelledTimers: [held!.name] })).written, true)
    t.same(Object.values(await timersOf()), [[], null], 'cancelled by name, it leaves the row')
  })

  await t.test('instances moving the same due timers at once make one job of each', {
    skip: needsRealPostgres('pollers in sessions of their own, each with its row locks'),
  }, async (t) => {
    const ids = (await start(6)).map((w) => w.id)
    clock.advance(61_000)
    const others = Array.from({ length: 3 }, () => postgres(db.url, { max: 1, onnotice: () => {} }))
    t.teardown(() => Promise.all(others.map((o) => o.end())))
    await db.sql.begin(async (tx) => {
      t.ok(await promoteTimers(tx, clock.now(), 1_000) >= 6, 'one poller moves them, and holds them until it commits')
      // Meanwhile three more pollers on their own connections: they pass the held rows by.
      const meanwhile = Promise.all(others.map((q) => promoteTimers(q, clock.now(), 1_000)))
      const answered = await Promise.race([meanwhile, new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), 5_000))])
      t.same(answered, [0, 0, 0], 'the others move nothing and wait for nobody')
    })
    t.equal(await promoteTimers(db.sql, clock.now(), 1_000), 0, 'after the commit, nothing is left to move')
    const jobs = await db.sql<{ n: number }[]>`
      select count(*)::int as n from wix_engine.jobs
      where workflow_id = any(${ids}::uuid[]) and kind = 'timer' group by workflow_id`
    t.same(jobs.map((j) => j.n), [1, 1, 1, 1, 1, 1], "each workflow's timer became exactly one job")
    const left = await db.sql`select 1 from wix_engine.workflows where id = any(${ids}::uuid[]) and (wake_at is not null or timers <> '[]')`
    t.equal(left.length, 0, 'and left its row')
  })

  await t.test('two sends to one workflow in one tick are written one after the other', async (t) => {
    const [w] = await start(1)
    const [a, b] = await Promise.all([
      engine.send(w!.id, { type: 'TICK' }, { source: 'test' }),
      engine.send(w!.id, { type: 'TICK' }, { source: 'test' }),
    ])
    t.ok(a.accepted && b.accepted, 'both are accepted')
    t.same([a.workflow.version, b.workflow.version].sort(), [2, 3], 'one after the other, not both on the same version')
    t.equal((await engine.get(w!.id))?.context.ticks, 2, 'neither tick is lost')

    const [x] = await start(1)
    const [c, d] = await Promise.all([
      engine.send(x!.id, { type: 'CLOSE' }, { source: 'test' }),
      engine.send(x!.id, { type: 'CLOSE' }, { source: 'test' }),
    ])
    t.same([c.accepted, d.accepted].sort(), [false, true], 'a second CLOSE, decided again on what the first wrote, is refused')
    t.equal(await historyCount([x!.id]), 2, 'one CLOSE in history')
  })

  await t.test('a write the database refuses fails its own caller only', async (t) => {
    await db.sql.unsafe(refuse('BOOM'))
    t.teardown(() => db.sql.unsafe('drop trigger if exists refuse on wix_engine.workflow_history'))
    const { ids, stored } = await startStored(3)
    const writer = createWriter(db.sql)
    const results = await Promise.allSettled([
      writer.commit(step(stored[0]!)),
      writer.commit(step(stored[1]!, stored[1]!.version, 'BOOM')),
      writer.commit(step(stored[2]!)),
    ])
    t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'], 'only the refused write is rejected')
    t.match((results[1] as PromiseRejectedResult).reason, { message: /refused BOOM/ }, 'with the database\'s error')
    t.same((await rows(ids)).map((r) => r.version).sort(), [1, 2, 2], 'its neighbours landed, it did not')
  })

  await t.test('a batch whose every write is refused rejects every caller, and writes nothing', async (t) => {
    await db.sql.unsafe(refuse('TICK'))
    t.teardown(() => db.sql.unsafe('drop trigger if exists refuse on wix_engine.workflow_history'))
    const ids = (await start(3)).map((w) => w.id)
    const results = await Promise.allSettled(ids.map((id) => engine.send(id, { type: 'TICK' }, { source: 'test' })))
    t.ok(results.every((r) => r.status === 'rejected' && /refused TICK/.test(String(r.reason))), 'every caller gets the error')
    t.same((await rows(ids)).map((r) => r.version), [1, 1, 1], 'no row moved on')
    t.equal(await historyCount(ids), 3, 'and history has only their starts')
  })

  await t.test('a connection lost mid-batch rejects the whole batch, and writes nothing', {
    skip: needsRealPostgres('ends another session with pg_terminate_backend'),
  }, async (t) => {
    await holdSlowWrites(t, db.sql)
    const { ids, stored } = await startStored(3)
    const victim = postgres(db.url, { max: 1, onnotice: () => {}, connection: { application_name: 'group-commit-victim' } })
    t.teardown(() => victim.end())
    const writer = createWriter(victim)
    const pending = Promise.allSettled([
      writer.commit(step(stored[0]!)),
      writer.commit(step(stored[1]!, stored[1]!.version, 'SLOW')),
      writer.commit(step(stored[2]!)),
    ])
    await waitUntil('the batch is held in its statement', async () => (await db.sql`
      select 1 from pg_stat_activity where application_name = 'group-commit-victim' and wait_event = 'PgSleep'`).length === 1)
    await db.sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'group-commit-victim'`
    const results = await pending
    t.ok(results.every((r) => r.status === 'rejected' && isDatabaseUnavailable(r.reason)),
      'all three callers are rejected, with an error their retries take for a blip')
    t.same((await rows(ids)).map((r) => r.version), [1, 1, 1], 'none of the three landed')
    t.equal(await historyCount(ids), 3, 'and history has only their starts')
    // as the engine's callers do: retried through the blip
    t.same((await persistently(() => writer.commit(step(stored[0]!)))).written, true, 'a retry lands once reconnected')
  })
  await t.test('a batch Postgres ends as a deadlock is sent again, and lands', async (t) => {
    const { ids, stored } = await startStored(2)
    // The first two statements that write DEADLOCKED history end as deadlock victims (40P01).
    await db.sql.unsafe(`
      create sequence wix_engine.deadlocks;
      create function wix_engine.deadlock() returns trigger language plpgsql as $$
      begin
        if nextval('wix_engine.deadlocks') <= 2 then raise exception 'deadlock detected' using errcode = '40P01'; end if;
        return new;
      end $$;
      create trigger deadlock before insert on wix_engine.workflow_history
        for each row when (new.events @> '[{"event_type": "DEADLOCKED"}]') execute function wix_engine.deadlock();`)
    t.teardown(() => db.sql.unsafe(`drop trigger deadlock on wix_engine.workflow_history;
      drop function wix_engine.deadlock(); drop sequence wix_engine.deadlocks`))
    const writer = createWriter(db.sql)
    const results = await Promise.all([
      writer.commit(step(stored[0]!, stored[0]!.version, 'DEADLOCKED')),
      writer.commit(step(stored[1]!)),
    ])
    t.same(results.map((r) => r.written), [true, true], 'both writes of the batch land, its caller none the wiser')
    const [{ tries }] = await db.sql<{ tries: number }[]>`select last_value::int as tries from wix_engine.deadlocks`
    t.equal(tries, 3, 'after two statements ended as deadlocks, the third went through')
    t.same((await rows(ids)).map((r) => r.version), [2, 2], 'each row moved on once')
  })

  await t.test('one row locked by another session holds only its own write: the 50 others commit, it fails as a blip', {
    skip: needsRealPostgres('holds a row lock from another session'),
  }, async (t) => {
    const { stored } = await startStored(51)
    // Short waits, so the locked write gives up soon: the test waits on outcomes, not on time.
    const writer = createWriter(db.sql, { stallMs: 300, writeTimeoutMs: 3_000 })
    // Another session holds one workflow's row, as a vault's FOR SHARE fence or an admin's open transaction would.
    const holder = await db.sql.reserve()
    await holder`begin`
    await holder`select 1 from wix_engine.workflows where id = ${stored[0]!.id} for update`
    let held = true
    const release = async () => {
      if (!held) return
      held = false
      await holder`rollback`
      holder.release()
    }
    t.teardown(release)
    // In one tick: all 51 go in one batch.
    const blocked = writer.commit(step(stored[0]!))
    const others = stored.slice(1).map((row) => writer.commit(step(row!)))
    const results = await Promise.all(others)
    t.ok(results.every((r) => r.written), 'the writes of the 50 other workflows commit while the row stays locked')
    const [b] = await Promise.allSettled([blocked])
    t.equal(b!.status, 'rejected', 'the write of the locked row fails')
    t.ok(isTransientDatabaseError((b as PromiseRejectedResult).reason), 'as a blip its caller sends again')
    await release()
    // Its cancel may have come too late (the write then lands when the lock goes): fenced, as any write.
    await waitUntil('the cancelled write has ended in Postgres', async () => (await db.sql`
      select 1 from pg_stat_activity
      where datname = current_database() and state = 'active' and query like '%jsonb_to_recordset%' and pid <> pg_backend_pid()`).length === 0)
    const now = (await readWorkflow(db.sql, stored[0]!.id))!
    t.equal((await writer.commit(step(now))).written, true, 'once the lock is gone, its row takes writes again')
  })

  await t.test('a batch the database never answers is cancelled in time, and the writes queued behind it land', {
    skip: needsRealPostgres('cancels a statement from another session'),
  }, async (t) => {
    await holdSlowWrites(t, db.sql)
    const { ids, stored } = await startStored(2)
    const logged: string[] = []
    const log = (_o: object, msg?: string) => void logged.push(String(msg))
    const writer = createWriter(db.sql, { writeTimeoutMs: 2_000, stallMs: 300, log: { error: log, warn: log } })
    const hung = writer.commit(step(stored[0]!, stored[0]!.version, 'SLOW'))
    const sleeping = async () => (await db.sql`
      select 1 from pg_stat_activity
      where datname = current_database() and wait_event = 'PgSleep' and query like '%jsonb_to_recordset%'`).length
    await waitUntil('the batch is held in its statement', async () => (await sleeping()) === 1)
    const behind = writer.commit(step(stored[1]!)) // one batch in flight: this one waits until it stalls
    const [h, b] = await Promise.allSettled([hung, behind])
    t.equal(h.status, 'rejected', 'the unanswered write fails')
    const reason = (h as PromiseRejectedResult).reason
    t.equal(reason.code, 'WRITE_TIMEOUT', 'with a timeout of its own')
    t.ok(isDatabaseUnavailable(reason), 'which its callers take for a blip and retry')
    t.same(b.status === 'fulfilled' && b.value.written, true, 'the write queued behind it landed, past the held one')
    t.match(logged, [/is held/, /went unanswered/], 'the stall and the deadline are logged')
    await waitUntil('the statement is cancelled in Postgres', async () => (await sleeping()) === 0)
    t.same((await rows(ids)).map((r) => r.version).sort(), [1, 2], 'the cancelled write did not land; the other did')
    t.equal(await historyCount(ids), 3, 'history has the starts and the one landed event')
  })
  await t.test('a held statement holds its own write: the next goes past it, at most three held at once, the oldest shown', {
    skip: needsRealPostgres('holds statements on several sessions'),
  }, async (t) => {
    await holdSlowWrites(t, db.sql)
    const { ids, stored } = await startStored(5)
    const writer = createWriter(db.sql, { stallMs: 100, writeTimeoutMs: 4_000, log: silentLog })
    const sleeping = async () => (await db.sql`
      select 1 from pg_stat_activity
      where datname = current_database() and wait_event = 'PgSleep' and query like '%jsonb_to_recordset%'`).length
    const held: Promise<unknown>[] = []
    for (let n = 1; n <= 3; n++) {
      held.push(writer.commit(step(stored[n - 1]!, stored[n - 1]!.version, 'SLOW')).catch((err: { code?: string }) => err.code))
      await waitUntil(`${n} held statement(s)`, async () => (await sleeping()) === n)
    }
    held.push(writer.commit(step(stored[3]!, stored[3]!.version, 'SLOW')).catch((err: { code?: string }) => err.code))
    const stats = writer.stats()
    t.equal(stats.inFlight, 3, 'three batches in flight, each held')
    t.equal(stats.queued, 1, 'the fourth waits: a database that answers nothing gets no more connections')
    t.ok(stats.oldestInFlightMs > 0, 'the oldest write in flight shows its age')
    t.same(await Promise.all(held), ['WRITE_TIMEOUT', 'WRITE_TIMEOUT', 'WRITE_TIMEOUT', 'WRITE_TIMEOUT'],
      'each held write fails at its deadline as the database being unavailable')
    await waitUntil('the held statements are cancelled in Postgres', async () => (await sleeping()) === 0)
    t.equal((await writer.commit(step(stored[4]!))).written, true, 'and the next write commits')
    await new Promise((resolve) => setImmediate(resolve)) // its batch leaves the flight once its caller is answered
    t.same(writer.stats(), { queued: 0, inFlight: 0, oldestInFlightMs: 0 }, 'leaving nothing in flight')
    t.equal(await historyCount(ids), 6, 'history has the five starts and the one landed event')
  })

  await t.test('past its bound the write queue refuses at once with WRITE_QUEUE_FULL (503); the queued writes land', {
    skip: needsRealPostgres('cancels a statement from another session'),
  }, async (t) => {
    await holdSlowWrites(t, db.sql)
    const { stored } = await startStored(4)
    const writer = createWriter(db.sql, { maxQueued: 2, stallMs: 60_000, writeTimeoutMs: 60_000, log: silentLog })
    const hung = writer.commit(step(stored[0]!, stored[0]!.version, 'SLOW')).catch((err: { code?: string }) => err.code)
    await waitUntil('the first write is held', async () => (await db.sql`
      select 1 from pg_stat_activity where datname = current_database() and wait_event = 'PgSleep'`).length === 1)
    const queued = [writer.commit(step(stored[1]!)), writer.commit(step(stored[2]!))]
    const refused = await writer.commit(step(stored[3]!)).then(() => undefined, (err: { code?: string; statusCode?: number }) => err)
    t.equal(refused?.code, 'WRITE_QUEUE_FULL', 'the third queued write is refused')
    t.equal(refused?.statusCode, 503, 'as 503: come back shortly')
    await db.sql`select pg_cancel_backend(pid) from pg_stat_activity where wait_event = 'PgSleep' and datname = current_database()`
    t.equal(await hung, '57014', 'the held write fails when its statement is cancelled')
    t.same((await Promise.all(queued)).map((r) => r.written), [true, true], 'the queued writes land')
    t.equal((await readWorkflow(db.sql, stored[3]!.id))!.version, stored[3]!.version, 'the refused write changed nothing')
  })

  await t.test('a batch unanswered while the server has gone away: its cancel cannot connect, and the process lives on', {
    skip: needsRealPostgres('holds a statement on a real server behind a gate'),
  }, async (t) => {
    await holdSlowWrites(t, db.sql)
    // The writer reaches Postgres through a gate that, once closed, refuses new connections
    // (the cancel request needs one) while the one holding the statement stays up.
    const gate = await databaseGate(db.url)
    const viaGate = postgres(gate.url, { max: 1, onnotice: () => {} })
    t.teardown(async () => {
      gate.destroy()
      await viaGate.end({ timeout: 1 })
    })
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => void unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    t.teardown(() => void process.off('unhandledRejection', onUnhandled))

    const { stored } = await startStored(1)
    const writer = createWriter(viaGate, { writeTimeoutMs: 1_000, log: silentLog })
    const hung = writer.commit(step(stored[0]!, stored[0]!.version, 'SLOW'))
    await waitUntil('the batch is held in its statement', async () => (await db.sql`
      select 1 from pg_stat_activity
      where datname = current_database() and wait_event = 'PgSleep' and query like '%jsonb_to_recordset%'`).length === 1)
    gate.close()
    const outcome = await hung.then(() => 'landed', (err: { code?: string }) => err.code)
    t.equal(outcome, 'WRITE_TIMEOUT', 'the unanswered write fails as the database being unavailable')
    // The cancel request's connection is refused; give its rejection time to surface.
    await new Promise((r) => setTimeout(r, 500))
    t.same(unhandled.map((e) => (e as { code?: string }).code), [], 'no unhandled rejection (it ends a server process)')
    await db.sql`select pg_cancel_backend(pid) from pg_stat_activity where wait_event = 'PgSleep' and datname = current_database()`
  })
})
