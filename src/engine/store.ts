import type { Fragment, Sql, TransactionSql } from 'postgres'
import type { PersistedState } from './types.ts'
import { leaseEnd, leaseOn } from './lease.ts'
import { cancelQuery } from './pg.ts'
import { WAKEUP_CHANNEL } from './wakeups.ts'

/**
 * The engine's SQL, one function per operation. Every write that follows from an event is one
 * row of one statement (data-modifying CTEs) that writes other workflows' events alongside it
 * (see writer.ts), fenced by the row's version: a concurrent writer makes it match nothing,
 * and the caller re-reads and re-decides.
 */

export interface WorkflowRow {
  id: string
  machine: string
  machine_version: number
  key: string | null
  state: string
  reason: string | null
  snapshot: PersistedState
  version: number
  created_at: Date
  updated_at: Date
}

export interface HistoryEntry {
  seq: number
  event_type: string
  event: Record<string, unknown>
  from_state: string | null
  to_state: string
  source: string
  at: Date
}

export interface NewJob {
  id: string
  kind: 'effect' | 'timer'
  name: string
  src: string | null
  payload: string | null
  event: unknown
  status: 'pending' | 'running'
  attempts: number
  run_at: Date
  lease_owner: string | null
  /** A running job's lease, counted from the database's clock at insert. */
  lease_ms: number | null
}

/** A pending timer as the workflow's row keeps it, until the runner moves it into `jobs` when due. */
export interface RowTimer {
  /** The id its timer job will have. */
  id: string
  name: string
  event: unknown
  /** ISO time: compared in SQL as timestamptz. */
  run_at: string
}

export interface JobRow extends Omit<NewJob, 'lease_ms'> {
  workflow_id: string
  machine: string
  lease_until: Date | null
}

/**
 * One run's hold on a job. `epoch` is the job's `attempts` when this run claimed it: every claim
 * bumps it, so a run whose lease ran out and whose job was claimed again no longer matches.
 */
export interface JobLease {
  id: string
  owner: string
  epoch: number
}

/** The statement's condition "this run still holds the job". */
const holds = (sql: Sql, lease: JobLease) =>
  sql`id = ${lease.id} and status = 'running' and lease_owner = ${lease.owner} and attempts = ${lease.epoch}`

/** A job's lease (lease.ts: on the database's clock), fenced beyond its owner by its epoch (`holds`). */
export const jobLease = (sql: Sql) => leaseOn(sql, { until: 'lease_until', owner: 'lease_owner' })

export interface AttemptRecord {
  attempt: number
  outcome: 'ok' | 'retry' | 'failed'
  started_at: Date
  error: unknown
}

export interface Transition {
  id: string
  version: number
  /** The machine version the snapshot was read with: a row migrated meanwhile is read again. */
  machineVersion: number
  /** The version the new snapshot belongs to (the running machine's, after any migration). */
  writtenMachineVersion: number
  state: string
  key: string | null
  reason: string | null
  snapshot: PersistedState
  /**
   * The accepted events, `seq` counting on from `version`: one, or two when a follow-up waiting
   * in this process rides along (engine `waitAndSend`). The row's version moves on by as many.
   */
  history: Omit<HistoryEntry, 'at'>[]
  now: Date
  jobs: NewJob[]
  /** Timers the transition sets: they join the row's, after those it cancels (`cancelledTimers`) leave. */
  timers: RowTimer[]
  activeInvokes: string[]
  respawned: string[]
  cancelledTimers: string[]
  /**
   * The job whose result this event is: the write happens only while that run still holds it,
   * and marks it done (or dead, for a job that could not run) with its attempt, in one statement.
   */
  job?: { lease: JobLease; attempt: AttemptRecord; status?: 'done' | 'dead' }
  /** Tell other instances (their `waitFor`) of this write: NOTIFY on commit, `w:<id>:<origin>`. */
  notify?: boolean
}

/**
 * Ids as a parameter the planner does not look into: an InitPlan's output, not a value. Postgres
 * plans a prepared statement anew for its parameters (a custom plan) for as long as those plans
 * came out cheaper, on average, than the one plan for any parameters (the generic plan). An array's
 * length changes a custom plan's cost, and the first custom plans are made while the tables are
 * small: once a vacuum's statistics remade the generic plan at a larger size, the batched write
 * could be planned on every execution from then on — 0.6 to 1.5 ms each time, as long as executing
 * it (bench/README.md, "Planned once"). Hidden thus, a custom plan costs what the generic one does
 * plus its planning, and the generic plan is kept. Index scans still take the array.
 */
const idsPlannedOnce = (sql: Sql, ids: string[]) => sql`(select ${ids}::uuid[])::uuid[]`

/** A row's `(timers, wake_at)` from the timer elements `e` of `from`: ordered by due time, and the earliest. */
const rowTimers = (sql: Sql | TransactionSql, from: Fragment): Fragment =>
  sql`select coalesce(jsonb_agg(e order by e->>'run_at'), '[]'::jsonb), min((e->>'run_at')::timestamptz) from ${from}`

/** The row, and with `lease` whether that run still holds its job (`job_held`). */
export async function readWorkflow(sql: Sql, id: string, lease?: JobLease) {
  const [row] = await sql<(WorkflowRow & { job_held: boolean | null })[]>`
    select w.*, ${lease ? sql`exists (select 1 from wix_engine.jobs where ${holds(sql, lease)})` : sql`null::boolean`} as job_held
    from wix_engine.workflows w where w.id = ${id}`
  return row
}

/** A workflow to start: its first row, its history so far and the jobs that history asked for. */
export interface NewWorkflow extends Omit<WorkflowRow, 'created_at' | 'updated_at'> {
  now: Date
  history: Omit<HistoryEntry, 'at'>[]
  jobs: NewJob[]
  timers: RowTimer[]
}

/** One batch's writes; `i` tells each write's result apart in what the statement returns. */
export interface Batch {
  creates: { i: number; w: NewWorkflow }[]
  transitions: { i: number; t: Transition }[]
}

/**
 * Writes a batch of creates and transitions of distinct workflows in one statement, so they
 * share one commit. Each transition is fenced on its own (version, machine version, its run
 * still holding its job): one that matches nothing is left out of every later step and its
 * caller re-decides, while the others land. A create whose id is taken inserts nothing.
 * Returns the writes that landed, by `i`, with the jobs each transition cancelled.
 *
 * Rows go in id order, so two instances' batches sharing rows tend to lock them in the same
 * order; a deadlock that happens all the same rolls the statement back, and the writer resends it.
 */
export async function commitBatch(sql: Sql, batch: Batch, o: { signal?: AbortSignal; origin?: string } = {}): Promise<Map<number, string[]>> {
  const { signal } = o
  const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  const creates = batch.creates.map(({ i, w }) => ({
    i, id: w.id, machine: w.machine, machine_version: w.machine_version, key: w.key, state: w.state, reason: w.reason,
    snapshot: w.snapshot, version: w.version, at: w.now, history: w.history, jobs: w.jobs, timers: w.timers,
  })).sort(byId)
  const transitions = batch.transitions.map(({ i, t }) => ({
    i, id: t.id, version: t.version, machine_version: t.machineVersion, written_machine_version: t.writtenMachineVersion,
    state: t.state, key: t.key, reason: t.reason, snapshot: t.snapshot, history: t.history, at: t.now, jobs: t.jobs, timers: t.timers,
    active_invokes: t.activeInvokes, respawned: t.respawned, cancelled_timers: t.cancelledTimers,
    job_id: t.job?.lease.id ?? null, lease_owner: t.job?.lease.owner ?? null, lease_epoch: t.job?.lease.epoch ?? null,
    job_status: t.job?.status ?? 'done', job_error: t.job?.status === 'dead' ? t.job.attempt.error : null,
    // Only failed runs get an attempt row, with their error. A run that succeeded is told by
    // history (its result event) and, after failed runs, by its job kept 'done' with their count;
    // a job done by its first run has nothing more to tell, so its row is deleted rather than
    // written again (a new version and an index entry): see effectAttempts.
    attempt: t.job && t.job.attempt.outcome !== 'ok' ? t.job.attempt : null,
    notify: t.notify ?? false,
  })).sort(byId)
  const jobIds = transitions.flatMap((t) => (t.job_id ? [t.job_id] : []))
  const query = sql<{ i: number; cancelled: string[] | null }[]>`
    with c as (
      select * from jsonb_to_recordset(${sql.json(creates as never)}::jsonb)
        as c(i int, id uuid, machine text, machine_version int, key text, state text, reason text, snapshot jsonb,
             version int, at timestamptz, history jsonb, jobs jsonb, timers jsonb)
    ), t as (
      -- first_run_ok: the job ends done by the run that first claimed it, which failed no attempt
      select *, coalesce(job_status = 'done' and attempt is null and lease_epoch = 1, false) as first_run_ok
      from jsonb_to_recordset(${sql.json(transitions as never)}::jsonb)
        as t(i int, id uuid, version int, machine_version int, written_machine_version int, state text, key text,
             reason text, snapshot jsonb, history jsonb, at timestamptz, jobs jsonb, timers jsonb,
             active_invokes text[], respawned text[], cancelled_timers text[],
             job_id uuid, lease_owner text, lease_epoch int, job_status text, job_error jsonb, attempt jsonb,
             notify boolean)
    ), inserted as (
      insert into wix_engine.workflows (id, machine, machine_version, key, state, reason, snapshot, version,
                                        created_at, updated_at, timers, wake_at)
      select id, machine, machine_version, key, state, reason, snapshot, version, at, at, timers,
             (select min((e->>'run_at')::timestamptz) from jsonb_array_elements(timers) e)
      from c
      -- two instances starting the same workflow (a derived id): the first one's stays
      on conflict (id) do nothing
      returning id
    ), created as (
      select c.* from c join inserted using (id)
    ), w as (
      update wix_engine.workflows f
      set state = t.state, key = t.key, reason = t.reason, snapshot = t.snapshot,
          machine_version = t.written_machine_version, version = f.version + jsonb_array_length(t.history), updated_at = t.at,
          -- applied to the row's timers as they are now (never a list read earlier): a timer the
          -- runner has moved out meanwhile does not come back; one set again under a name replaces it
          (timers, wake_at) = (${rowTimers(sql, sql`
            (select e from jsonb_array_elements(f.timers) e
             where not (e->>'name') = any(t.cancelled_timers)
               and not exists (select 1 from jsonb_array_elements(t.timers) n where n->>'name' = e->>'name')
             union all select e from jsonb_array_elements(t.timers) e) kept`)})
      -- a job's result counts only while its run holds the job (not cancelled, not taken over)
      from t left join wix_engine.jobs j
        on j.id = any(${idsPlannedOnce(sql, jobIds)})
       and j.id = t.job_id and j.status = 'running' and j.lease_owner = t.lease_owner and j.attempts = t.lease_epoch
      -- The ids as arrays too: a generic plan (prepared statements) then reads the rows by primary
      -- key however the tables grew, where a join to the recordset alone was planned, at a small
      -- table, as a sequential scan and kept (and the job check read every running job).
      where f.id = any(${idsPlannedOnce(sql, transitions.map((t) => t.id))})
        and f.id = t.id and f.version = t.version and f.machine_version = t.machine_version
        and (t.job_id is null or j.id is not null)
      returning t.*
    ), history as (
      -- one row per write, its events in order under the first one's seq
      insert into wix_engine.workflow_history (workflow_id, seq, events, at)
      select s.id, (s.history->0->>'seq')::int, s.history, s.at
      from (select id, at, history from created union all select id, at, history from w) s
      where jsonb_array_length(s.history) > 0
    ), done as (
      update wix_engine.jobs j
      set status = w.job_status, lease_owner = null, lease_until = null, updated_at = w.at,
          last_error = case when w.job_status = 'dead' then w.job_error else j.last_error end
      from w where j.id = w.job_id and not w.first_run_ok
    ), finished as (
      -- done on its first run: nothing about the job is left to tell that history does not (its
      -- result event, when), so its row goes instead of staying on as 'done'
      delete from wix_engine.jobs j using w where j.id = w.job_id and w.first_run_ok
    ), attempt as (
      insert into wix_engine.job_attempts (job_id, attempt, workflow_id, outcome, started_at, finished_at, error)
      select w.job_id, a.attempt, w.id, a.outcome, a.started_at, w.at, a.error
      from w, jsonb_to_record(w.attempt) as a(attempt int, outcome text, started_at timestamptz, error jsonb)
      where w.attempt is not null
    ), cancelled as (
      update wix_engine.jobs j set status = 'cancelled', lease_owner = null, lease_until = null, updated_at = w.at
      from w
      where j.workflow_id = w.id and j.status in ('pending', 'running') and j.id is distinct from w.job_id
        and ((j.kind = 'effect' and (j.name = any(w.respawned) or not j.name = any(w.active_invokes)))
          or (j.kind = 'timer' and j.name = any(w.cancelled_timers)))
      returning j.id, w.i
    ), new_jobs as (
      insert into wix_engine.jobs (id, workflow_id, kind, name, src, payload, event, status, attempts, run_at,
                                   lease_owner, lease_until, created_at, updated_at)
      select j.id, s.id, j.kind, j.name, j.src, j.payload, j.event, j.status, j.attempts, j.run_at, j.lease_owner,
             case when j.lease_ms is not null then ${leaseEnd(sql, sql`j.lease_ms`)} end, s.at, s.at
      from (select id, at, jobs from created union all select id, at, jobs from w) s, jsonb_to_recordset(s.jobs)
        as j(id uuid, kind text, name text, src text, payload text, event jsonb, status text,
             attempts int, run_at timestamptz, lease_owner text, lease_ms int)
    )
    select i, null::text[] as cancelled, null::boolean as notified from created
    union all
    select w.i, coalesce((select array_agg(c.id::text) from cancelled c where c.i = w.i), '{}'),
           -- tell other instances (their waitFor) of this write: NOTIFY is sent on commit
           case when w.notify then (select true from pg_notify(${WAKEUP_CHANNEL}, 'w:' || w.id::text || ':' || ${o.origin ?? ''})) end
    from w`
  // Abandoned by its writer: Postgres cancels it (it rolls back) if it is still running there.
  const cancel = () => cancelQuery(query)
  signal?.addEventListener('abort', cancel, { once: true })
  const rows = await query.finally(() => signal?.removeEventListener('abort', cancel))
  return new Map(rows.map((r) => [r.i, r.cancelled ?? []]))
}

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
 * Claims due jobs, and jobs whose lease ran out (their runner died), for `owner`: up to
 * `limits.effects` effects and `limits.timers` timers, so slow effects never take every slot.
 * Leases are compared and set on the database's clock.
 */
export async function claimJobs(sql: Sql, owner: string, now: Date, leaseMs: number, limits: { effects: number; timers: number }) {
  const due = (kind: 'effect' | 'timer', limit: number) => sql`
    select id from wix_engine.jobs
    where kind = ${kind} and ((status = 'pending' and run_at <= ${now}) or (status = 'running' and ${jobLease(sql).lapsed()}))
    order by run_at
    limit ${limit}
    for update skip locked`
  return sql<JobRow[]>`
    with timers as (${due('timer', limits.timers)}), effects as (${due('effect', limits.effects)}),
    due as (select id from timers union all select id from effects)
    update wix_engine.jobs j
    set status = 'running', ${jobLease(sql).take(leaseMs, owner)},
        attempts = j.attempts + 1, updated_at = ${now}
    from due, wix_engine.workflows w
    where j.id = due.id and w.id = j.workflow_id
    returning j.id, j.workflow_id, j.kind, j.name, j.src, j.payload, j.event, j.status, j.attempts,
              j.run_at, j.lease_owner, j.lease_until, w.machine`
}

/** Puts a failed run back in the queue for a later attempt, recording this one. False when the run lost the job. */
export async function retryJob(sql: Sql, lease: JobLease, runAt: Date, now: Date, attempt: AttemptRecord) {
  const rows = await sql`
    with j as (
      update wix_engine.jobs set status = 'pending', run_at = ${runAt}, lease_owner = null, lease_until = null,
                      last_error = ${sql.json(attempt.error as never)}::jsonb, updated_at = ${now}
      where ${holds(sql, lease)}
      returning id, workflow_id
    )
    insert into wix_engine.job_attempts (job_id, attempt, workflow_id, outcome, started_at, finished_at, error)
    select j.id, ${attempt.attempt}, j.workflow_id, ${attempt.outcome}, ${attempt.started_at}, ${now},
           ${sql.json(attempt.error as never)}::jsonb
    from j
    returning job_id`
  return rows.length === 1
}

/** Ends a job whose result the workflow no longer wants (it moved on), if this run still holds it. */
export async function discardJob(sql: Sql, lease: JobLease, now: Date) {
  await sql`
    update wix_engine.jobs set status = 'discarded', lease_owner = null, lease_until = null, updated_at = ${now}
    where ${holds(sql, lease)}`
}

/** Ends a job that can never run (unreadable payload, unknown machine, spent budget), with its reason. */
export async function killJob(sql: Sql, lease: JobLease, reason: unknown, now: Date) {
  await sql`
    update wix_engine.jobs set status = 'dead', lease_owner = null, lease_until = null, updated_at = ${now},
                    last_error = ${sql.json(reason as never)}::jsonb
    where ${holds(sql, lease)}`
}

/**
 * The heartbeat: renews the leases of the runs this process still holds, on the database's
 * clock. Returns the ids it renewed; a run missing from them lost its job.
 */
export async function renewLeases(sql: Sql, owner: string, runs: { id: string; epoch: number }[], leaseMs: number) {
  const rows = await sql<{ id: string }[]>`
    update wix_engine.jobs j set lease_until = ${leaseEnd(sql, leaseMs)}
    from jsonb_to_recordset(${sql.json(runs as never)}::jsonb) as r(id uuid, epoch int)
    where j.id = r.id and j.status = 'running' and j.lease_owner = ${owner} and j.attempts = r.epoch
    returning j.id`
  return new Set(rows.map((r) => r.id))
}

/**
 * Hands this owner's unfinished jobs back to the queue at once (graceful shutdown), or only
 * `ids` (jobs claimed but never started here: no free slot, or shutting down). Those give back
 * their claim's attempt too: a run that never happened must not count as one that died (a
 * re-run takes it for a code spent, and the attempt budget shrinks).
 */
export async function releaseLeases(sql: Sql, owner: string, now: Date, ids?: string[], notify = false) {
  const [row] = await sql<{ n: number }[]>`
    with released as (
      update wix_engine.jobs set status = 'pending', lease_owner = null, lease_until = null, run_at = ${now},
                      updated_at = ${now} ${ids ? sql`, attempts = attempts - 1` : sql``}
      where status = 'running' and lease_owner = ${owner} ${ids ? sql`and id = any(${ids}::uuid[])` : sql``}
      returning id
    )
    select count(*)::int as n ${notify ? sql`, pg_notify(${WAKEUP_CHANNEL}, 'j')` : sql``} from released`
  return row!.n
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

/** A workflow's accepted events in order, one entry each (the table holds one row per write). */
export async function readHistory(sql: Sql, id: string) {
  return sql<HistoryEntry[]>`
    select seq, event_type, event, from_state, to_state, source, at
    from wix_engine.workflow_events where workflow_id = ${id} order by seq`
}
