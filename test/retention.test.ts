import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import t from 'tap'
import { createRetention } from '../src/retention/retention.ts'
import { BATCH } from '../src/retention/prune.ts'
import { freshDatabase, onEmbedded } from './support/database.ts'
import { NO_ORPHANS, orphans, silentLog, testClock } from './support/engine.ts'
import { siteOwner } from './support/flow.ts'
import { startService } from './support/service.ts'

/** Old data goes by the configured ages; installations that hold tokens never do. */

const db = await freshDatabase()
t.teardown(db.drop)

const DAY = 86_400_000
const clock = testClock(new Date())
const service = await startService(t, { db, now: clock.now, engine: { poll: false } })
const { sql } = service.app

/** `n` installations ended in `state`, last changed at `at`, straight into the tables, each with its history. */
async function seed(n: number, state: string, at: Date) {
  await sql`
    with w as (
      insert into wix_engine.workflows (id, machine, machine_version, key, state, reason, snapshot, version, created_at, updated_at)
      select gen_random_uuid(), 'installation', 1, null, ${state}, null, '{"status":"done"}'::jsonb, 1, ${at}, ${at}
      from generate_series(1, ${n})
      returning id
    )
    insert into wix_engine.workflow_history (workflow_id, seq, events, at)
    select id, 1, jsonb_build_array(jsonb_build_object('seq', 1, 'event_type', 'xstate.init', 'event', '{}'::jsonb,
                                                       'from_state', null, 'to_state', ${state}::text, 'source', 'test')), ${at}
    from w`
}
const count = async (state: string) =>
  (await sql<{ n: number }[]>`select count(*)::int as n from wix_engine.workflows where state = ${state}`)[0]!.n

// A complete install, finished: it keeps its tokens for as long as the app is installed.
const owner = siteOwner(service)
await owner.openAppUrl('retention-finished')
const finishedId = await owner.installationId()
await owner.callback(await owner.approve())
await service.app.engine.waitFor(finishedId, (w) => w.state === 'SetupIncomplete', 5_000)
const finish = await service.api('POST', `/api/installations/${finishedId}/finish`)

// A site owner who never came back from the consent screen.
const walker = siteOwner(service)
await walker.startFromPlatform()
const abandonedId = await walker.installationId()
clock.advance(31 * 60_000)
await service.app.engine.runner.tick()
await service.app.engine.runner.idle()

// An ended installation that still holds tokens (say, a refresh token Wix rejected).
const heldId = randomUUID()
await sql`
  insert into wix_engine.workflows (id, machine, machine_version, key, state, reason, snapshot, version, created_at, updated_at)
  values (${heldId}, 'installation', 1, 'held-instance', 'ReinstallRequired', 'reinstall_required', '{}'::jsonb, 1,
          ${clock.now()}, ${clock.now()})`
await sql`
  insert into wix_install.instance_tokens (instance_id, workflow_id, refresh_token, created_at, updated_at)
  values ('held-instance', ${heldId}, 'v1.k1.x.y', ${clock.now()}, ${clock.now()})`

// The flood the rate limit lets through: abandoned starts, more than two batches of them.
await seed(2 * BATCH + 1, 'ConsentAbandoned', clock.now())
await seed(3, 'ExchangeFailed', clock.now())
// One of them with its exchange job, failed, and that failed run.
const exchangeJobId = randomUUID()
await sql`
  insert into wix_engine.jobs (id, workflow_id, kind, name, src, payload, status, attempts, run_at, created_at, updated_at)
  select ${exchangeJobId}, id, 'effect', 'exchangeCode', 'exchangeCode', 'x', 'failed', 1, ${clock.now()}, ${clock.now()}, ${clock.now()}
  from wix_engine.workflows where state = 'ExchangeFailed' limit 1`
await sql`
  insert into wix_engine.job_attempts (job_id, attempt, workflow_id, outcome, started_at, finished_at, error)
  select id, 1, workflow_id, 'failed', ${clock.now()}, ${clock.now()}, ${sql.json({ code: 'WIX_REFUSED' })}
  from wix_engine.jobs where id = ${exchangeJobId}`
// A job that ended dead (its payload unreadable), on the Finished installation, with its failed
// run (the engine records only failed runs).
const deadJobId = randomUUID()
await sql`
  insert into wix_engine.jobs (id, workflow_id, kind, name, src, payload, status, attempts, run_at, last_error, created_at, updated_at)
  values (${deadJobId}, ${finishedId}, 'effect', 'finishSetup', 'finishSetup', 'x', 'dead', 1, ${clock.now()},
          ${sql.json({ code: 'PAYLOAD_UNREADABLE' })}, ${clock.now()}, ${clock.now()})`
await sql`
  insert into wix_engine.job_attempts (job_id, attempt, workflow_id, outcome, started_at, finished_at, error)
  values (${deadJobId}, 1, ${finishedId}, 'failed', ${clock.now()}, ${clock.now()}, ${sql.json({ code: 'PAYLOAD_UNREADABLE' })})`

// An effect that succeeded on its second run: its job stays 'done' (a job done by its first run is
// deleted as it ends), with its failed first run.
const retriedJobId = randomUUID()
await sql`
  insert into wix_engine.jobs (id, workflow_id, kind, name, src, payload, status, attempts, run_at, created_at, updated_at)
  values (${retriedJobId}, ${finishedId}, 'effect', 'finishSetup', 'finishSetup', 'x', 'done', 2, ${clock.now()},
          ${clock.now()}, ${clock.now()})`
await sql`
  insert into wix_engine.job_attempts (job_id, attempt, workflow_id, outcome, started_at, finished_at, error)
  values (${retriedJobId}, 1, ${finishedId}, 'retry', ${clock.now()}, ${clock.now()}, ${sql.json({ code: 'WIX_UNAVAILABLE' })})`

// The same as the engine records it now (migrations/engine/005): the effect lived in its
// workflow's row, so its attempts, the failed one and the success after it, name it and no job.
const rowEffectId = randomUUID()
await sql`
  insert into wix_engine.job_attempts (job_id, attempt, workflow_id, name, outcome, started_at, finished_at, error)
  values (${rowEffectId}, 1, ${finishedId}, 'finishSetup', 'retry', ${clock.now()}, ${clock.now()}, ${sql.json({ code: 'WIX_UNAVAILABLE' })}),
         (${rowEffectId}, 2, ${finishedId}, 'finishSetup', 'ok', ${clock.now()}, ${clock.now()}, null)`

t.test('the setup is what the test believes', async (t) => {
  t.equal(finish.json?.state, 'Finished', 'one installation is Finished')
  const abandoned = await service.app.engine.get(abandonedId)
  t.equal(abandoned?.state, 'ConsentAbandoned', 'one was abandoned at the consent screen')
  t.equal(await count('ConsentAbandoned'), 2 * BATCH + 2, 'beside the seeded abandoned ones')
  const [rows] = await sql<{ history: number; attempts: number }[]>`
    select (select count(*)::int from wix_engine.workflow_history h join wix_engine.workflows w on w.id = h.workflow_id
            where w.state in ('ConsentAbandoned', 'ExchangeFailed')) as history,
           (select count(*)::int from wix_engine.job_attempts where job_id = ${exchangeJobId}) as attempts`
  t.ok(rows!.history >= 2 * BATCH + 5, `the ended ones have history (${rows!.history} rows)`)
  t.equal(rows!.attempts, 1, 'and one failed exchange its job and attempt')
})

t.test('nothing young is touched', async (t) => {
  const report = await service.app.retention.runOnce()
  const nothing = { abandoned: 0, failed: 0, finished: 0, history: 0, jobs: 0, deadJobs: 0, webhooks: 0 }
  t.same(report, nothing, 'a first run finds nothing old enough')
  t.equal(await service.app.retention.runOnce(), undefined, 'and the next is not due for RETENTION_INTERVAL_MINUTES')
})

t.test('old data goes, in bounded batches, and tokens stay', async (t) => {
  // Every statement the sweep sends, seen by the driver.
  const statements: string[] = []
  const counted = postgres(db.url, { max: 1, onnotice: () => {}, debug: (_c, q) => statements.push(q) })
  t.teardown(() => counted.end())
  if (onEmbedded()) t.comment('embedded: the counting client shares PGlite\'s one session')
  const retention = createRetention({ sql: counted, config: service.config.retention, now: clock.now, log: silentLog })

  clock.advance(2 * DAY)
  const abandoned = await retention.runOnce()
  t.equal(abandoned?.abandoned, 2 * BATCH + 2, 'after a day, every abandoned installation is deleted')
  // 1,002 abandoned: 500 + 500 + 2; then one for the failed ones, which are not old enough yet.
  t.equal(statements.filter((q) => /delete from wix_engine.workflows/.test(q)).length, 4, `in statements of at most ${BATCH} each`)
  t.equal(abandoned?.failed, 0, 'failed ones are kept longer')
  const gone = await service.api('GET', `/api/installations/${abandonedId}`)
  t.equal(gone.status, 404, 'the abandoned one is gone from the API')

  clock.advance(90 * DAY)
  const old = await retention.runOnce()
  t.equal(old?.failed, 3, 'after 30 days, failed installations without tokens are deleted')
  t.equal(old?.finished, 1, 'the Finished installation\'s history is pruned')
  t.ok(old!.history >= 5, `its ${old!.history} history rows`)
  t.ok(old!.jobs >= 1, `and its ${old!.jobs} finished effect jobs, with their attempts`)
  t.equal(old?.deadJobs, 1, 'a dead job goes after as long as history is kept')
  const [attempts] = await sql<{ n: number }[]>`
    select count(*)::int as n from wix_engine.job_attempts where workflow_id = ${finishedId}`
  t.equal(attempts!.n, 0, 'no effect attempt of it is left')

  const [held] = await sql<{ state: string; tokens: number }[]>`
    select state, (select count(*)::int from wix_install.instance_tokens where workflow_id = ${heldId}) as tokens
    from wix_engine.workflows where id = ${heldId}`
  t.same(held, { state: 'ReinstallRequired', tokens: 1 }, 'an ended installation holding tokens stays, and its tokens')
  t.same(await orphans(sql), NO_ORPHANS, 'no history, job or attempt of a deleted installation is left')
  const kept = await service.api('GET', `/api/installations/${finishedId}`)
  t.equal(kept.json.state, 'Finished', 'the Finished installation stays')
  t.same(kept.json.history, [], 'without its history')
  const token = await service.api('POST', `/api/installations/${finishedId}/access-token`)
  t.equal(token.status, 200, 'and its tokens still work: the app can call Wix for the site')

  const [row] = await sql<{ progress: { finished: { id: string } }; next_run_at: Date; owner: string | null }[]>`
    select progress, next_run_at, owner from wix_install.maintenance where name = 'retention'`
  t.equal(row!.progress.finished.id, finishedId, 'the pass remembers how far it got')
  t.equal(row!.owner, null, 'and lets go of its lease')
  const next = clock.now().getTime() + service.config.retention.intervalMs
  t.equal(row!.next_run_at.getTime(), next, 'the next run is scheduled in the database')
})

t.test('one instance at a time; a dead one\'s run is taken over', async (t) => {
  clock.advance(2 * 60 * 60_000)
  const a = createRetention({ sql, config: service.config.retention, now: clock.now, log: silentLog, owner: 'a' })
  const b = createRetention({ sql, config: service.config.retention, now: clock.now, log: silentLog, owner: 'b' })
  const runs = await Promise.all([a.runOnce(), b.runOnce()])
  t.equal(runs.filter(Boolean).length, 1, 'of two instances due at once, one runs')

  clock.advance(2 * 60 * 60_000)
  // Leases are on the database's clock, which the test cannot move: the dead one's runs out by
  // being set a moment in the past.
  await sql`update wix_install.maintenance set owner = 'dead', lease_until = now() + interval '1 minute' where name = 'retention'`
  t.equal(await a.runOnce(), undefined, 'a run held by another instance is left to it')
  await sql`update wix_install.maintenance set lease_until = now() - interval '1 millisecond' where name = 'retention'`
  t.ok(await a.runOnce(), 'once its lease has run out, another instance takes over')
})

t.test('instances whose clocks disagree by more than a lease never hold a run at once', async (t) => {
  clock.advance(2 * 60 * 60_000)
  const config = service.config.retention
  // An instance that dies in its run, lease held: its clock's first reading (the claim) is its last.
  let readings = 0
  const dying = createRetention({ sql, config, log: silentLog, owner: 'behind', now: () => {
    if (++readings > 1) throw new Error('killed mid-run')
    return clock.now()
  } })
  await t.rejects(dying.runOnce(), /killed mid-run/, 'one instance takes the run and dies in it')
  // Ten minutes ahead: twice the lease. On its own clock the first one's lease ran out long ago.
  const ahead = createRetention({ sql, config, log: silentLog, owner: 'ahead', now: () => new Date(clock.now().getTime() + 10 * 60_000) })
  t.equal(await ahead.runOnce(), undefined, 'another, its clock 10 minutes ahead, leaves the run to the first one\'s lease')
  const [row] = await sql<{ owner: string }[]>`select owner from wix_install.maintenance where name = 'retention'`
  t.equal(row!.owner, 'behind', 'which still holds it')
  await sql`update wix_install.maintenance set lease_until = now() - interval '1 millisecond' where name = 'retention'`
  t.ok(await ahead.runOnce(), 'until it runs out on the database\'s clock')
})

t.test('a shutdown pauses a run after its current batch; the next run resumes', async (t) => {
  clock.advance(2 * 60 * 60_000)
  await seed(BATCH + 100, 'ConsentAbandoned', new Date(clock.now().getTime() - 2 * DAY))
  const retention = createRetention({ sql, config: service.config.retention, now: clock.now, log: silentLog })
  const run = retention.runOnce()
  await retention.stop()
  t.equal((await run)?.abandoned, BATCH, 'the run stops after one batch')
  const [row] = await sql<{ owner: string | null; due: boolean }[]>`
    select owner, next_run_at <= ${clock.now()} as due from wix_install.maintenance where name = 'retention'`
  t.same(row, { owner: null, due: true }, 'and hands its lease back, still due')
  const next = await service.app.retention.runOnce()
  t.equal(next?.abandoned, 100, 'the next run, in any instance, deletes the rest')
})

t.test('processed webhook deliveries go after RETENTION_WEBHOOK_DAYS', async (t) => {
  const at = clock.now()
  const old = new Date(at.getTime() - 8 * DAY)
  const delivery = (id: string, processedAt: Date | null, receivedAt = old) =>
    sql`insert into wix_install.webhook_deliveries (id, event_type, instance_id, data, received_at, processed_at)
        values (${id}, 'AppRemoved', 'inst', '{}', ${receivedAt}, ${processedAt})`
  await delivery('old-1', old)
  await delivery('old-2', old)
  await delivery('old-unprocessed', null)
  await delivery('recent', at, at)
  clock.advance(2 * 60 * 60_000)
  const report = await service.app.retention.runOnce()
  t.equal(report?.webhooks, 2, 'the two processed over a week ago are deleted')
  const [left] = await sql<{ n: number }[]>`select count(*)::int as n from wix_install.webhook_deliveries`
  t.equal(left!.n, 2, 'an unprocessed one and a recent one stay')
})
