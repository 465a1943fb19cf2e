import type { Fragment, Sql, TransactionSql } from 'postgres'
import { leaseEnd, leaseOn } from './lease.ts'
import { WAKEUP_CHANNEL } from './wakeups.ts'

/**
 * The job queue's SQL. An effect lives in its workflow's row while it is live (`effects`, claimed
 * by `effect_due_at`; migrations/engine/005), a timer in the row until due and then in `jobs`
 * (`timers`, `wake_at`; 002). `jobs` also keeps effects that ended dead, for admins.
 */

/** A job as claimed, whichever table it came from. */
export interface JobRow {
  id: string
  workflow_id: string
  machine: string
  kind: 'effect' | 'timer'
  name: string
  src: string | null
  payload: string | null
  event: unknown
  status: 'pending' | 'running'
  attempts: number
  run_at: Date
  lease_owner: string | null
  lease_until: Date | null
}

/**
 * One run's hold on a job. `epoch` is the job's `attempts` when this run claimed it: every claim
 * bumps it, so a run whose lease ran out and whose job was claimed again no longer matches.
 */
export interface JobLease {
  id: string
  workflowId: string
  kind: 'effect' | 'timer'
  /** The effect's invoke id, or the timer's name. */
  name: string
  owner: string
  epoch: number
}

export interface AttemptRecord {
  attempt: number
  outcome: 'ok' | 'retry' | 'failed'
  started_at: Date
  error: unknown
}

/** A timer job's lease (lease.ts: on the database's clock), fenced beyond its owner by its epoch. */
export const jobLease = (sql: Sql) => leaseOn(sql, { until: 'lease_until', owner: 'lease_owner' })

/** The lease of an effect entry `e` of a workflow's `effects`: the same lease, a field of the entry. */
const effectLease = (sql: Sql) => leaseOn(sql, { until: sql`(e->>'lease_until')::timestamptz` })

/** What an effect entry that `lease`'s run still holds contains (an entry matches by `@>`). */
export const effectFence = (lease: Pick<JobLease, 'id' | 'owner' | 'epoch'>) =>
  ({ id: lease.id, status: 'running', owner: lease.owner, attempts: lease.epoch })

/** The condition "this run still holds its timer job", on `jobs`. */
const timerHeld = (sql: Sql, lease: JobLease) =>
  sql`id = ${lease.id} and status = 'running' and lease_owner = ${lease.owner} and attempts = ${lease.epoch}`

/** The condition "this run still holds its job": an effect in its workflow's row (`w`), a timer in `jobs`. */
export const holds = (sql: Sql, lease: JobLease, w = sql`w`) => lease.kind === 'effect'
  ? sql`${w}.effects @> ${sql.json([effectFence(lease)] as never)}::jsonb`
  : sql`exists (select 1 from wix_engine.jobs where ${timerHeld(sql, lease)})`

/** Assignments for an UPDATE of `workflows`: its effects become `effects` (SQL over the row's), and their due time with them. */
export const setEffects = (sql: Sql | TransactionSql, effects: Fragment): Fragment =>
  sql`(effects, effect_due_at) = (select x.e, wix_engine.effects_due(x.e) from (select ${effects} as e) x)`

/**
 * Moves due timers out of their workflows' rows into `jobs`, as pending timer jobs the claim
 * below then takes: up to `limit` workflows, each locked (`skip locked`: another instance moves
 * the rest). A transition committing meanwhile applies its timer changes to the row as this
 * leaves it, and one the timer's job outlives cancels it there by name, as any timer job.
 */
export async function promoteTimers(sql: Sql | TransactionSql, now: Date, limit: number) {
  const [row] = await sql<{ n: number }[]>`
    with due as (
      select id, timers from wix_engine.workflows
      where wake_at <= ${now}
      order by wake_at
      limit ${limit}
      for update skip locked
    ), kept as (
      update wix_engine.workflows w
      set (timers, wake_at) = (${rowTimers(sql, sql`jsonb_array_elements(due.timers) e where (e->>'run_at')::timestamptz > ${now}`)})
      from due where w.id = due.id
    ), moved as (
      insert into wix_engine.jobs (id, workflow_id, kind, name, src, payload, event, status, attempts, run_at,
                                   lease_owner, lease_until, created_at, updated_at)
      select (e->>'id')::uuid, due.id, 'timer', e->>'name', null, null, e->'event', 'pending', 0,
             (e->>'run_at')::timestamptz, null, null, ${now}, ${now}
      from due, jsonb_array_elements(due.timers) e
      where (e->>'run_at')::timestamptz <= ${now}
      on conflict (id) do nothing
      returning id
    )
    select count(*)::int as n from moved`
  return row!.n
}

/**
 * Moves effect jobs an engine from before migration 005 left in `jobs` (pending, or running on a
 * lease that ran out: handed back at its shutdown, or its process died) into their workflows'
 * rows, where the claim takes them: during a rolling upgrade such an instance still writes
 * effects there, and once it is gone nothing else would run them. Returns how many it moved.
 */
export async function adoptLegacyEffects(sql: Sql, now: Date, limit: number) {
  const entry = sql`jsonb_build_object('id', j.id, 'name', j.name, 'src', j.src, 'payload', j.payload, 'status', 'pending',
                                       'attempts', j.attempts, 'run_at', j.run_at, 'owner', null, 'lease_until', null)`
  const [row] = await sql<{ n: number }[]>`
    with legacy as (
      select j.id from wix_engine.jobs j
      where j.kind = 'effect' and ((j.status = 'pending' and j.run_at <= ${now}) or (j.status = 'running' and ${jobLease(sql).lapsed()}))
      order by j.workflow_id
      limit ${limit}
      for update skip locked
    ), locked as (
      -- in id order, as the batched write locks them (see lockedInIdOrder)
      select w.id from wix_engine.workflows w
      where w.id in (select j.workflow_id from wix_engine.jobs j join legacy using (id))
      order by w.id for update
    ), gone as (
      delete from wix_engine.jobs j using legacy where j.id = legacy.id
      returning j.*
    ), moved as (
      update wix_engine.workflows w
      set ${setEffects(sql, sql`w.effects || coalesce((select jsonb_agg(${entry} order by j.created_at) from gone j where j.workflow_id = w.id), '[]'::jsonb)`)}
      from locked where w.id = locked.id
      returning 1
    )
    select count(*)::int as n from gone`
  return row!.n
}

/** A row's `(timers, wake_at)` from the timer elements `e` of `from`: ordered by due time, and the earliest. */
export const rowTimers = (sql: Sql | TransactionSql, from: Fragment): Fragment =>
  sql`select coalesce(jsonb_agg(e order by e->>'run_at'), '[]'::jsonb), min((e->>'run_at')::timestamptz) from ${from}`

/**
 * Claims due jobs, and jobs whose lease ran out (their runner died), for `owner`: up to
 * `limits.timers` timer jobs, and the earliest due effect of up to `limits.effects` workflows, so
 * slow effects never take every slot. Leases are compared and set on the database's clock; a
 * pending job's due time is the app's (`now`), as it was set.
 */
export async function claimJobs(sql: Sql, owner: string, now: Date, leaseMs: number, limits: { effects: number; timers: number }) {
  const dueEffect = sql`(e->>'status' = 'pending' and (e->>'run_at')::timestamptz <= ${now})
    or (e->>'status' = 'running' and ${effectLease(sql).lapsed()})`
  return sql<JobRow[]>`
    with timers as (
      select id from wix_engine.jobs
      where kind = 'timer' and ((status = 'pending' and run_at <= ${now}) or (status = 'running' and ${jobLease(sql).lapsed()}))
      order by run_at
      limit ${limits.timers}
      for update skip locked
    ), claimed_timers as (
      update wix_engine.jobs j
      set status = 'running', ${jobLease(sql).take(leaseMs, owner)}, attempts = j.attempts + 1, updated_at = ${now}
      from timers, wix_engine.workflows w
      where j.id = timers.id and w.id = j.workflow_id
      returning j.id, j.workflow_id, w.machine, j.kind, j.name, j.src, j.payload, j.event, j.status, j.attempts,
                j.run_at, j.lease_owner, j.lease_until
    ), due_rows as (
      -- by the index; whether an effect is due is checked below on each entry, on each clock
      select id, effects from wix_engine.workflows
      where effect_due_at <= greatest(${now}::timestamptz, now())
      order by effect_due_at
      limit ${limits.effects}
      for update skip locked
    ), due as (
      select r.id as workflow_id, d.e,
             jsonb_build_object('status', 'running', 'owner', ${owner}::text, 'lease_until', ${leaseEnd(sql, leaseMs)},
                                'attempts', (d.e->>'attempts')::int + 1) as taken
      from due_rows r, lateral (
        select e from jsonb_array_elements(r.effects) e where ${dueEffect}
        order by wix_engine.effects_due(jsonb_build_array(e)) limit 1) d
    ), claimed_effects as (
      update wix_engine.workflows w
      set ${setEffects(sql, sql`wix_engine.effects_patched(w.effects, jsonb_build_array(jsonb_build_object('id', due.e->'id')), due.taken)`)}
      from due where w.id = due.workflow_id
      returning (due.e->>'id')::uuid as id, w.id as workflow_id, w.machine, 'effect'::text as kind, due.e->>'name' as name,
                due.e->>'src' as src, due.e->>'payload' as payload, null::jsonb as event, 'running'::text as status,
                (due.taken->>'attempts')::int as attempts, (due.e->>'run_at')::timestamptz as run_at, ${owner}::text as lease_owner,
                (due.taken->>'lease_until')::timestamptz as lease_until
    )
    select * from claimed_timers union all select * from claimed_effects`
}

/** Records a run that did not succeed (or succeeded after such runs), naming its effect. */
const attemptRow = (sql: Sql, lease: JobLease, now: Date, a: AttemptRecord, from: Fragment) => sql`
  insert into wix_engine.job_attempts (job_id, attempt, workflow_id, name, outcome, started_at, finished_at, error)
  select ${lease.id}, ${a.attempt}, ${lease.workflowId}, ${lease.name}, ${a.outcome}, ${a.started_at}, ${now},
         ${sql.json(a.error as never)}::jsonb
  from ${from}`

/** Puts a failed run back in the queue for a later attempt, recording this one. False when the run lost the job. */
export async function retryJob(sql: Sql, lease: JobLease, runAt: Date, now: Date, attempt: AttemptRecord) {
  // Effects are the only jobs that retry: a timer's run only sends its event.
  const patch = { status: 'pending', run_at: runAt.toISOString(), owner: null, lease_until: null }
  const rows = await sql`
    with kept as (
      update wix_engine.workflows w
      set ${setEffects(sql, sql`wix_engine.effects_patched(w.effects, ${sql.json([effectFence(lease)] as never)}::jsonb, ${sql.json(patch as never)}::jsonb)`)}
      where w.id = ${lease.workflowId} and ${holds(sql, lease)}
      returning w.id
    )
    ${attemptRow(sql, lease, now, attempt, sql`kept`)}
    returning job_id`
  return rows.length === 1
}

/** Takes a held effect out of its workflow's row: a fragment of a `with` list, named `taken`. */
const takeEffect = (sql: Sql, lease: JobLease) => sql`
  taken as (
    update wix_engine.workflows w
    set ${setEffects(sql, sql`wix_engine.effects_without(w.effects, ${sql.json([effectFence(lease)] as never)}::jsonb)`)}
    where w.id = ${lease.workflowId} and ${holds(sql, lease)}
    returning w.id
  )`

/** Ends a job whose result the workflow no longer wants (it moved on), if this run still holds it. */
export async function discardJob(sql: Sql, lease: JobLease, now: Date) {
  if (lease.kind === 'effect') {
    await sql`with ${takeEffect(sql, lease)} select count(*) from taken`
    return
  }
  await sql`
    update wix_engine.jobs set status = 'discarded', lease_owner = null, lease_until = null, updated_at = ${now}
    where ${timerHeld(sql, lease)}`
}

/**
 * Ends a job that can never run (unreadable payload, unknown machine, spent budget), with its
 * reason: a `jobs` row, dead, for admins; an effect leaves its workflow's row for it.
 */
export async function killJob(sql: Sql, lease: JobLease, reason: unknown, now: Date) {
  if (lease.kind === 'effect') {
    await sql`
      with ${takeEffect(sql, lease)}
      ${deadEffect(sql, sql`select ${lease.id}::uuid as job_id, taken.id, ${lease.name}::text as job_name, ${lease.epoch}::int as epoch,
                                   ${sql.json(reason as never)}::jsonb as error, ${now}::timestamptz as at from taken`)}`
    return
  }
  await sql`
    update wix_engine.jobs set status = 'dead', lease_owner = null, lease_until = null, updated_at = ${now},
                    last_error = ${sql.json(reason as never)}::jsonb
    where ${timerHeld(sql, lease)}`
}

/** Inserts dead effect jobs from `rows` (job_id, id: the workflow's, job_name, epoch, error, at). */
export const deadEffect = (sql: Sql | TransactionSql, rows: Fragment) => sql`
  insert into wix_engine.jobs (id, workflow_id, kind, name, src, payload, event, status, attempts, run_at,
                               lease_owner, lease_until, last_error, created_at, updated_at)
  select d.job_id, d.id, 'effect', d.job_name, null, null, null, 'dead', d.epoch, d.at, null, null, d.error, d.at, d.at
  from (${rows}) d
  on conflict (id) do nothing`

/**
 * Locks the rows of `table` whose ids are `ids` in id order, as the batched write locks its
 * workflows (store.ts): a statement that locks several rows in another order can deadlock with
 * it, and Postgres then holds both for a second (deadlock_timeout) before ending one.
 */
const lockedInIdOrder = (sql: Sql, table: Fragment, ids: Fragment) =>
  sql`select id from ${table} where id = any(${ids}) order by id for update`

/**
 * The heartbeat: renews the leases of the runs this process still holds, on the database's
 * clock. Returns the ids it renewed; a run missing from them lost its job. Effects and timer jobs
 * go in a statement each, so that neither holds one table's rows while it waits on the other's.
 */
export async function renewLeases(sql: Sql, owner: string, runs: Pick<JobLease, 'id' | 'workflowId' | 'kind' | 'epoch'>[], leaseMs: number) {
  const timers = runs.filter((r) => r.kind === 'timer').map((r) => ({ id: r.id, epoch: r.epoch }))
  const byWorkflow = new Map<string, object[]>()
  for (const r of runs) {
    if (r.kind === 'effect') byWorkflow.set(r.workflowId, [...(byWorkflow.get(r.workflowId) ?? []), effectFence({ ...r, owner })])
  }
  const effects = [...byWorkflow].map(([id, fences]) => ({ id, fences }))
  const renewed = new Set<string>()
  if (timers.length) {
    const rows = await sql<{ id: string }[]>`
      with r as (select * from jsonb_to_recordset(${sql.json(timers as never)}::jsonb) as r(id uuid, epoch int)),
      locked as (${lockedInIdOrder(sql, sql`wix_engine.jobs`, sql`array(select id from r)`)})
      update wix_engine.jobs j set lease_until = ${leaseEnd(sql, leaseMs)}
      from r, locked
      where j.id = r.id and locked.id = j.id and j.status = 'running' and j.lease_owner = ${owner} and j.attempts = r.epoch
      returning j.id`
    rows.forEach((r) => renewed.add(r.id))
  }
  if (effects.length) {
    const rows = await sql<{ ids: string[] | null }[]>`
      with r as (select * from jsonb_to_recordset(${sql.json(effects as never)}::jsonb) as r(id uuid, fences jsonb)),
      locked as (${lockedInIdOrder(sql, sql`wix_engine.workflows`, sql`array(select id from r)`)})
      update wix_engine.workflows w
      set ${setEffects(sql, sql`wix_engine.effects_patched(w.effects, r.fences, jsonb_build_object('lease_until', ${leaseEnd(sql, leaseMs)}))`)}
      from r, locked
      where w.id = r.id and locked.id = w.id
        and exists (select 1 from jsonb_array_elements(r.fences) f where w.effects @> jsonb_build_array(f))
      returning (select array_agg(e->>'id') from jsonb_array_elements(w.effects) e
                 where exists (select 1 from jsonb_array_elements(r.fences) f where e @> f)) as ids`
    rows.forEach((r) => r.ids?.forEach((id) => renewed.add(id)))
  }
  return renewed
}

/**
 * Hands this owner's unfinished jobs back to the queue at once (graceful shutdown), or only the
 * effects `runs` (committed here but never started: no free slot, or shutting down). Those give
 * back their claim's attempt too: a run that never happened must not count as one that died (a
 * re-run takes it for a code spent, and the attempt budget shrinks). Returns how many timer jobs
 * and workflows' rows it let go of. Rows are locked in id order (see `lockedInIdOrder`).
 */
export async function releaseLeases(sql: Sql, owner: string, now: Date, runs?: Pick<JobLease, 'id' | 'workflowId'>[], notify = false) {
  const ids = runs?.map((r) => r.id) ?? null
  const mine = sql`e->>'status' = 'running' and e->>'owner' = ${owner} and (${ids}::text[] is null or e->>'id' = any(${ids}::text[]))`
  const released = sql`e || jsonb_build_object('status', 'pending', 'owner', null, 'lease_until', null, 'run_at', ${now}::timestamptz,
                                               'attempts', (e->>'attempts')::int - ${runs ? 1 : 0})`
  let n = 0
  if (!runs) {
    const [row] = await sql<{ n: number }[]>`
      with locked as (
        select id from wix_engine.jobs where status = 'running' and lease_owner = ${owner} and kind = 'timer' order by id for update
      ), timers as (
        update wix_engine.jobs j set status = 'pending', lease_owner = null, lease_until = null, run_at = ${now}, updated_at = ${now}
        from locked where j.id = locked.id
        returning 1
      )
      select count(*)::int as n from timers`
    n += row!.n
  }
  const mineHere = sql`w.effects @> ${sql.json([{ status: 'running', owner }] as never)}::jsonb`
  const [row] = await sql<{ n: number }[]>`
    with locked as (
      select id from wix_engine.workflows w
      where ${runs ? sql`w.id = any(${runs.map((r) => r.workflowId)}::uuid[])` : sql`w.effect_due_at is not null`} and ${mineHere}
      order by id for update
    ), effects as (
      update wix_engine.workflows w
      set ${setEffects(sql, sql`(select jsonb_agg(case when ${mine} then ${released} else e end order by o)
                                 from jsonb_array_elements(w.effects) with ordinality x(e, o))`)}
      from locked where w.id = locked.id and ${mineHere}
      returning 1
    )
    select count(*)::int as n ${notify ? sql`, pg_notify(${WAKEUP_CHANNEL}, 'j')` : sql``} from effects`
  return n + row!.n
}

export interface DeadJob {
  id: string
  workflowId: string
  kind: 'effect' | 'timer'
  name: string
  attempts: number
  reason: unknown
  diedAt: Date
}

/** Jobs that ended dead, newest first: what admins and metrics show. */
export async function deadJobs(sql: Sql, limit = 100): Promise<DeadJob[]> {
  return sql<DeadJob[]>`
    select id, workflow_id as "workflowId", kind, name, attempts, last_error as reason, updated_at as "diedAt"
    from wix_engine.jobs where status = 'dead' order by updated_at desc limit ${limit}`
}

/** How many jobs ended dead, by kind and reason code: a gauge for metrics and `/api/stats`. */
export async function deadJobCounts(sql: Sql) {
  return sql<{ kind: 'effect' | 'timer'; code: string; n: number }[]>`
    select kind, coalesce(last_error->>'code', 'UNKNOWN') as code, count(*)::int as n
    from wix_engine.jobs where status = 'dead' group by 1, 2 order by 1, 2`
}
