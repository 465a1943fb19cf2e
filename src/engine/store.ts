import type { Fragment, Sql } from 'postgres'
import type { PersistedState } from './types.ts'
import { deadEffect, effectFence, holds, rowTimers, setEffects, type AttemptRecord, type JobLease } from './job-store.ts'
import { leaseEnd } from './lease.ts'
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

/**
 * An effect a transition starts, as its workflow's row keeps it (`effects`): leased at once to the
 * process that committed it, which runs it right after the commit (the fast path).
 */
export interface NewEffect {
  id: string
  name: string
  src: string
  /** The effect's input, sealed (it can hold an OAuth code). */
  payload: string
  status: 'running'
  attempts: 1
  /** ISO time. */
  run_at: string
  owner: string
  /** Its lease, counted from the database's clock at commit. */
  lease_ms: number
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
  /** Effects the transition starts: they join the row's, after those it ends leave. */
  effects: NewEffect[]
  /** Timers the transition sets: they join the row's, after those it cancels (`cancelledTimers`) leave. */
  timers: RowTimer[]
  activeInvokes: string[]
  respawned: string[]
  cancelledTimers: string[]
  /**
   * The job whose result this event is: the write happens only while that run still holds it,
   * and ends the job with its attempt in the same statement: an effect leaves the row (for a
   * `jobs` row, dead, if it could not run), a timer job is done (or dead).
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

/**
 * A `workflows` row as readers take it (`WorkflowRow`): not the effects' sealed inputs nor the
 * timers, which only the engine's own statements read and write in place.
 */
export const workflowColumns = (sql: Sql) =>
  sql`w.id, w.machine, w.machine_version, w.key, w.state, w.reason, w.snapshot, w.version, w.created_at, w.updated_at`

/** The row, and with `lease` whether that run still holds its job (`job_held`). */
export async function readWorkflow(sql: Sql, id: string, lease?: JobLease) {
  const [row] = await sql<(WorkflowRow & { job_held: boolean | null })[]>`
    select ${workflowColumns(sql)}, ${lease ? holds(sql, lease) : sql`null::boolean`} as job_held
    from wix_engine.workflows w where w.id = ${id}`
  return row
}

/** A workflow to start: its first row, its history so far and the jobs that history asked for. */
export interface NewWorkflow extends Omit<WorkflowRow, 'created_at' | 'updated_at'> {
  now: Date
  history: Omit<HistoryEntry, 'at'>[]
  effects: NewEffect[]
  timers: RowTimer[]
}

/** One batch's writes; `i` tells each write's result apart in what the statement returns. */
export interface Batch {
  creates: { i: number; w: NewWorkflow }[]
  transitions: { i: number; t: Transition }[]
}

/** The new effects `list` (a jsonb array of NewEffect) as the row keeps them: their leases counted on the database's clock. */
const leasedEffects = (sql: Sql, list: Fragment) => sql`(
  select coalesce(jsonb_agg(e - 'lease_ms' || jsonb_build_object('lease_until', ${leaseEnd(sql, sql`(e->>'lease_ms')::int`)}) order by o), '[]'::jsonb)
  from jsonb_array_elements(${list}) with ordinality x(e, o))`

/**
 * Writes a batch of creates and transitions of distinct workflows in one statement, so they
 * share one commit. Each transition is fenced on its own (version, machine version, its run
 * still holding its job): one that matches nothing is left out of every later step and its
 * caller re-decides, while the others land. A create whose id is taken inserts nothing.
 * Returns the writes that landed, by `i`, with the timer jobs each transition cancelled.
 *
 * Rows go in id order, so two instances' batches sharing rows tend to lock them in the same
 * order; a deadlock that happens all the same rolls the statement back, and the writer resends it.
 */
export async function commitBatch(sql: Sql, batch: Batch, o: { signal?: AbortSignal; origin?: string } = {}): Promise<Map<number, string[]>> {
  const { signal } = o
  const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  const creates = batch.creates.map(({ i, w }) => ({
    i, id: w.id, machine: w.machine, machine_version: w.machine_version, key: w.key, state: w.state, reason: w.reason,
    snapshot: w.snapshot, version: w.version, at: w.now, history: w.history, effects: w.effects, timers: w.timers,
  })).sort(byId)
  const transitions = batch.transitions.map(({ i, t }) => transitionRecord(i, t)).sort(byId)
  const timerJobIds = transitions.flatMap((t) => (t.job_kind === 'timer' ? [t.job_id!] : []))
  const query = sql<{ i: number; cancelled: string[] | null }[]>`
    with c as (
      select * from jsonb_to_recordset(${sql.json(creates as never)}::jsonb)
        as c(i int, id uuid, machine text, machine_version int, key text, state text, reason text, snapshot jsonb,
             version int, at timestamptz, history jsonb, effects jsonb, timers jsonb)
    ), t as (
      -- first_run_ok: a timer job ends done by the run that first claimed it
      select *, coalesce(job_kind = 'timer' and job_status = 'done' and attempt is null and lease_epoch = 1, false) as first_run_ok
      from jsonb_to_recordset(${sql.json(transitions as never)}::jsonb)
        as t(i int, id uuid, version int, machine_version int, written_machine_version int, state text, key text,
             reason text, snapshot jsonb, history jsonb, at timestamptz, effects jsonb, timers jsonb,
             active_invokes text[], respawned text[], cancelled_timers text[],
             job_id uuid, job_kind text, job_name text, job_fence jsonb, lease_owner text, lease_epoch int,
             job_status text, job_error jsonb, attempt jsonb, notify boolean)
    ), inserted as (
      insert into wix_engine.workflows (id, machine, machine_version, key, state, reason, snapshot, version,
                                        created_at, updated_at, timers, wake_at, effects, effect_due_at)
      select id, machine, machine_version, key, state, reason, snapshot, version, at, at, timers,
             (select min((e->>'run_at')::timestamptz) from jsonb_array_elements(timers) e),
             n.effects, wix_engine.effects_due(n.effects)
      from c, lateral (select ${leasedEffects(sql, sql`c.effects`)} as effects) n
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
             union all select e from jsonb_array_elements(t.timers) e) kept`)}),
          -- the row's effects as they are now (claims and heartbeats change their leases, never
          -- which are live): those still invoked stay, those it ends or starts again and the one
          -- whose result this is leave, and those it starts join
          ${setEffects(sql, sql`(
            select coalesce(jsonb_agg(e order by o), '[]'::jsonb) from (
              select e, o from jsonb_array_elements(f.effects) with ordinality x(e, o)
              where (e->>'name') = any(t.active_invokes) and not (e->>'name') = any(t.respawned)
                and (e->>'id') is distinct from t.job_id::text
              union all
              select e, 1000000 + o from jsonb_array_elements(${leasedEffects(sql, sql`t.effects`)}) with ordinality y(e, o)) kept)`)}
      -- a job's result counts only while its run holds the job (not cancelled, not taken over):
      -- an effect in this row, a timer in jobs
      from t left join wix_engine.jobs j
        on j.id = any(${idsPlannedOnce(sql, timerJobIds)})
       and j.id = t.job_id and j.status = 'running' and j.lease_owner = t.lease_owner and j.attempts = t.lease_epoch
      -- The ids as arrays too: a generic plan (prepared statements) then reads the rows by primary
      -- key however the tables grew, where a join to the recordset alone was planned, at a small
      -- table, as a sequential scan and kept (and the job check read every running job).
      where f.id = any(${idsPlannedOnce(sql, transitions.map((t) => t.id))})
        and f.id = t.id and f.version = t.version and f.machine_version = t.machine_version
        and (t.job_id is null or (t.job_kind = 'effect' and f.effects @> t.job_fence) or j.id is not null)
      returning t.*
    ), history as (
      -- one row per write, its events in order under the first one's seq
      insert into wix_engine.workflow_history (workflow_id, seq, events, at)
      select s.id, (s.history->0->>'seq')::int, s.history, s.at
      from (select id, at, history from created union all select id, at, history from w) s
      where jsonb_array_length(s.history) > 0
    ), dead as (
      -- an effect that could not run ends as a dead job, for admins to see
      ${deadEffect(sql, sql`select w.job_id, w.id, w.job_name, w.lease_epoch as epoch, w.job_error as error, w.at
                            from w where w.job_kind = 'effect' and w.job_status = 'dead'`)}
    ), done as (
      update wix_engine.jobs j
      set status = w.job_status, lease_owner = null, lease_until = null, updated_at = w.at,
          last_error = case when w.job_status = 'dead' then w.job_error else j.last_error end
      from w where j.id = w.job_id and w.job_kind = 'timer' and not w.first_run_ok
    ), finished as (
      -- done on its first run: nothing about the job is left to tell that history does not (its
      -- result event, when), so its row goes instead of staying on as 'done'
      delete from wix_engine.jobs j using w where j.id = w.job_id and w.first_run_ok
    ), attempt as (
      insert into wix_engine.job_attempts (job_id, attempt, workflow_id, name, outcome, started_at, finished_at, error)
      select w.job_id, a.attempt, w.id, w.job_name, a.outcome, a.started_at, w.at, a.error
      from w, jsonb_to_record(w.attempt) as a(attempt int, outcome text, started_at timestamptz, error jsonb)
      where w.attempt is not null
    ), cancelled as (
      update wix_engine.jobs j set status = 'cancelled', lease_owner = null, lease_until = null, updated_at = w.at
      from w
      where j.workflow_id = w.id and j.status in ('pending', 'running') and j.id is distinct from w.job_id
        and j.kind = 'timer' and j.name = any(w.cancelled_timers)
      returning j.id, w.i
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

/** A transition as the batched write's recordset takes it. */
function transitionRecord(i: number, t: Transition) {
  const lease = t.job?.lease
  const attempt = t.job?.attempt
  return {
    i, id: t.id, version: t.version, machine_version: t.machineVersion, written_machine_version: t.writtenMachineVersion,
    state: t.state, key: t.key, reason: t.reason, snapshot: t.snapshot, history: t.history, at: t.now, effects: t.effects, timers: t.timers,
    active_invokes: t.activeInvokes, respawned: t.respawned, cancelled_timers: t.cancelledTimers,
    job_id: lease?.id ?? null, job_kind: lease?.kind ?? null, job_name: lease?.name ?? null,
    job_fence: lease?.kind === 'effect' ? [effectFence(lease)] : null, lease_owner: lease?.owner ?? null, lease_epoch: lease?.epoch ?? null,
    job_status: t.job?.status ?? 'done', job_error: t.job?.status === 'dead' ? attempt!.error : null,
    // Runs that failed get an attempt row, with their error, and so does an effect's success after
    // such runs (its count). A first run's success is told by history alone (its result event).
    attempt: attempt && (attempt.outcome !== 'ok' || (lease!.kind === 'effect' && lease!.epoch > 1)) ? attempt : null,
    notify: t.notify ?? false,
  }
}

/** A workflow's accepted events in order, one entry each (the table holds one row per write). */
export async function readHistory(sql: Sql, id: string) {
  return sql<HistoryEntry[]>`
    select seq, event_type, event, from_state, to_state, source, at
    from wix_engine.workflow_events where workflow_id = ${id} order by seq`
}
