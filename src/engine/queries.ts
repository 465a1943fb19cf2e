import type { Fragment, Sql } from 'postgres'
import { jobLease } from './job-store.ts'
import { workflowColumns, type WorkflowRow } from './store.ts'

/**
 * How the rest of the app reads and tidies engine state. The engine's tables are its own: code
 * outside `src/engine` goes through these functions (or the engine object, which binds them),
 * never through the tables. Filters are those the tables' indexes serve.
 */

/** Which workflows of one machine a list, a lookup or a tidy-up takes. */
export interface WorkflowFilter {
  machine: string
  /** In any of these top-level states. */
  state?: string | string[]
  reason?: string
  /** The business key the machine set (an installation's Wix instanceId), or any of several. */
  key?: string | string[]
  /** Only workflows not yet in a final state. */
  active?: boolean
  /** Only workflows in a final state (read through workflows_ended_idx). */
  ended?: boolean
  /** Top-level context fields equal to these strings: unindexed, so pair it with a narrow filter. */
  context?: Record<string, string>
  createdFrom?: Date
  createdTo?: Date
  updatedFrom?: Date
  updatedBefore?: Date
}

/**
 * The order a list is paged in: newest-created or newest-updated first, ties by id. Created order
 * reads a creation window as a range of workflows_created_idx, however many rows it holds.
 */
export type ListOrder = 'created' | 'updated'

export interface ListOptions {
  order: ListOrder
  /** Where the previous page ended, in `order`: its created_at or updated_at, and its id. */
  after?: { at: Date; id: string }
  limit: number
}

const where = (sql: Sql, f: WorkflowFilter) => {
  const states = f.state === undefined ? undefined : [f.state].flat()
  const context = Object.entries(f.context ?? {})
  return sql`machine = ${f.machine}
    ${states ? sql`and state = any(${states}::text[])` : sql``}
    ${f.reason ? sql`and reason = ${f.reason}` : sql``}
    ${typeof f.key === 'string' ? sql`and key = ${f.key}` : f.key ? sql`and key = any(${f.key}::text[])` : sql``}
    ${f.active ? sql`and snapshot ->> 'status' = 'active'` : sql``}
    ${f.ended ? sql`and snapshot ->> 'status' = 'done'` : sql``}
    ${context.reduce((all, [field, value]) => sql`${all} and snapshot -> 'context' ->> ${field} = ${value}`, sql``)}
    ${f.createdFrom ? sql`and created_at >= ${f.createdFrom}` : sql``}
    ${f.createdTo ? sql`and created_at < ${f.createdTo}` : sql``}
    ${f.updatedFrom ? sql`and updated_at >= ${f.updatedFrom}` : sql``}
    ${f.updatedBefore ? sql`and updated_at < ${f.updatedBefore}` : sql``}`
}

/** One page of workflows in `o.order`, by keyset (no offset: deep pages stay cheap). */
export async function listWorkflows(sql: Sql, f: WorkflowFilter, o: ListOptions): Promise<WorkflowRow[]> {
  const created = o.order === 'created'
  // A cursor at or past the window's end excludes nothing more, but as a row comparison Postgres
  // would start the index scan from it, reading every entry between it and the window: drop it.
  const end = created ? f.createdTo : f.updatedBefore
  const after = o.after && !(end && o.after.at >= end) ? o.after : undefined
  return sql<WorkflowRow[]>`
    select ${workflowColumns(sql)} from wix_engine.workflows w
    where ${where(sql, f)}
      ${!after ? sql``
        : created ? sql`and (created_at, id) < (${after.at}, ${after.id}::uuid)`
        : sql`and (updated_at, id) < (${after.at}, ${after.id}::uuid)`}
    ${created ? sql`order by created_at desc, id desc` : sql`order by updated_at desc, id desc`}
    limit ${o.limit}`
}

/** A workflow of `machine` by its id or, the newest with it, by its key: one statement. */
export async function findWorkflow(sql: Sql, machine: string, idOrKey: string): Promise<WorkflowRow | undefined> {
  const id = UUID.test(idOrKey) ? idOrKey : null
  const [row] = await sql<WorkflowRow[]>`
    select ${workflowColumns(sql)} from wix_engine.workflows w
    where machine = ${machine} and (id = ${id}::uuid or key = ${idOrKey})
    order by (id = ${id}::uuid) is true desc, created_at desc
    limit 1`
  return row
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** How many workflows are in each state, with each failure reason, by machine. */
export async function countWorkflows(sql: Sql, machine?: string) {
  return sql<{ machine: string; state: string; reason: string | null; n: number }[]>`
    select machine, state, reason, count(*)::int as n from wix_engine.workflows
    ${machine ? sql`where machine = ${machine}` : sql``} group by 1, 2, 3`
}

/**
 * The job queue as of `now`: how many effects and timers are queued (pending or running; an
 * effect lives in its workflow's row, and a timer does until due, when it counts as pending); how
 * many wait to be run (due: pending and past their time, or running on a lease that ran out, its
 * runner gone) and how many run on a live lease; since when the oldest due one has waited, in all
 * and among timers (the lag of deadlines).
 */
export async function queueStats(sql: Sql, now: Date) {
  const [row] = await sql<{ effect: number; timer: number; waiting: number; running: number; oldest: Date | null; oldest_timer: Date | null }[]>`
    with queued as (
      -- timer jobs and effects (in their workflows' rows), as one table
      select kind, status, case when status = 'pending' then run_at else lease_until end as since,
             -- a lapsed lease as the claim sees one: on the database's clock
             (status = 'pending' and run_at <= ${now}) or (status = 'running' and ${jobLease(sql).lapsed()}) as due
      from wix_engine.live_jobs
      union all
      -- timers still in their workflows' rows (moved into jobs once due)
      select 'timer', 'pending', (e->>'run_at')::timestamptz, (e->>'run_at')::timestamptz <= ${now}
      from wix_engine.workflows w, jsonb_array_elements(w.timers) e where w.wake_at is not null
    )
    select count(*) filter (where kind = 'effect')::int as effect,
           count(*) filter (where kind = 'timer')::int as timer,
           count(*) filter (where due)::int as waiting,
           count(*) filter (where status = 'running' and not due)::int as running,
           min(since) filter (where due) as oldest,
           min(since) filter (where due and kind = 'timer') as oldest_timer
    from queued`
  return row!
}

export interface AttemptRow {
  /** The effect's invoke id (its job's name). */
  job: string
  attempt: number
  outcome: 'ok' | 'retry' | 'failed'
  /** Null for a first run's success: history tells it, not an attempt row. */
  started_at: Date | null
  finished_at: Date
  error: Record<string, unknown> | null
}

/** How an earlier run of an effect job ended: `outcome` null when it left none (it died, or lost its lease). */
export interface EarlierRun {
  attempt: number
  outcome: 'retry' | 'failed' | null
  error: Record<string, unknown> | null
}

/**
 * The runs of an effect job before run `attempt`, oldest first, found by the run's idempotency key
 * (`<workflow id>:<job id>`, job-executor.ts). Every claim counts a run; only failed runs record one,
 * so a run with no record is one whose process died or whose lease ran out mid-run.
 */
export async function earlierRuns(sql: Sql, idempotencyKey: string, attempt: number) {
  const jobId = idempotencyKey.slice(idempotencyKey.lastIndexOf(':') + 1)
  if (attempt <= 1) return []
  return sql<EarlierRun[]>`
    select g.attempt, a.outcome, a.error
    from generate_series(1, ${attempt - 1}::int) as g(attempt)
    left join wix_engine.job_attempts a on a.job_id = ${jobId}::uuid and a.attempt = g.attempt
    order by g.attempt`
}

/**
 * Every finished run of a workflow's effects (`job` is the effect's invoke id), in the order they
 * finished. Failed runs are rows of their own (`job_attempts`), and so is a success after them
 * (its start not recorded); a first run's success is told by its result event in history alone.
 * Before effects lived in their workflows' rows (migrations/engine/005), a success after failed
 * runs was told by its job kept 'done': such jobs are read too.
 */
export async function effectAttempts(sql: Sql, workflowId: string) {
  return sql<AttemptRow[]>`
    select coalesce(a.name, j.name) as job, a.attempt, a.outcome, a.started_at, a.finished_at, a.error
    from wix_engine.job_attempts a left join wix_engine.jobs j on j.id = a.job_id
    where a.workflow_id = ${workflowId} and coalesce(j.kind, 'effect') = 'effect'
    union all
    select j.name, j.attempts, 'ok', null, j.updated_at, null
    from wix_engine.jobs j
    where j.workflow_id = ${workflowId} and j.kind = 'effect' and j.status = 'done'
      and not exists (select 1 from wix_engine.job_attempts a where a.job_id = j.id and a.attempt = j.attempts)
    union all
    -- an effect's result as the runner sends it: source 'effect:<name>' (job-executor.ts), event
    -- 'xstate.done.actor.<name>' (XState's)
    select e.name, 1, 'ok', null, h.at, null
    from wix_engine.workflow_events h, lateral (select substr(h.source, length('effect:') + 1) as name) e
    where h.workflow_id = ${workflowId} and h.source like 'effect:%' and h.event_type = 'xstate.done.actor.' || e.name
      and not exists (select 1 from wix_engine.jobs j
                      where j.workflow_id = h.workflow_id and j.kind = 'effect' and j.name = e.name
                        and j.status = 'done' and j.updated_at = h.at)
      and not exists (select 1 from wix_engine.job_attempts a
                      where a.workflow_id = h.workflow_id and a.name = e.name and a.outcome = 'ok' and a.finished_at = h.at)
    order by finished_at, attempt`
}

// ---- conditions for the caller's own statements ---------------------------------------------

/**
 * For a write of the caller's own that must land only while workflow `id` is in one of `states`:
 * a condition for its WHERE. It holds the workflow's row FOR SHARE until the caller's statement
 * commits, so a transition out of those states either committed first (and the write matches
 * nothing) or waits until after it.
 */
export const inStates = (sql: Sql, id: string, states: string[]): Fragment =>
  sql`exists (select 1 from wix_engine.workflows where id = ${id} and state = any(${states}::text[]) for share)`

/** When the workflow whose id is `idColumn` (a column of the caller's statement) was created. */
export const createdAtOf = (sql: Sql, idColumn: string): Fragment =>
  sql`(select created_at from wix_engine.workflows where id = ${sql(idColumn)})`

// ---- tidying up -------------------------------------------------------------------------------

/**
 * Deletes up to `limit` workflows matching `f`, with their history, jobs and attempts, except
 * those `keep(idColumn)` holds for: a condition of the caller's, on the workflow's id. One
 * statement, and no foreign key to cascade: the engine writes a workflow's history and jobs only
 * in statements that write or lock its row, so a row this statement locks as it sees it has no
 * history or job it does not see. A row another transaction holds is skipped, and so is one
 * changed since the statement began (Postgres would lock the newer version, whose writer's rows
 * the statement cannot see, and leave them behind): the next call takes it. Returns how many went.
 */
export async function deleteWorkflows(sql: Sql, f: WorkflowFilter, limit: number, keep?: (idColumn: Fragment) => Fragment) {
  const rows = await sql`
    with doomed as (
      select w.id from wix_engine.workflows w
      where ${where(sql, f)} ${keep ? sql`and not ${keep(sql`w.id`)}` : sql``}
        -- the version this statement sees: one committed since (what the lock below would take
        -- and check again) was written by another transaction, its xmin
        and w.xmin = (select seen.xmin from wix_engine.workflows seen where seen.id = w.id)
      limit ${limit}
      for update skip locked
    ), history as (
      delete from wix_engine.workflow_history h using doomed where h.workflow_id = doomed.id
    ), jobs as (
      delete from wix_engine.jobs j using doomed where j.workflow_id = doomed.id
    ), attempts as (
      delete from wix_engine.job_attempts a using doomed where a.workflow_id = doomed.id
    )
    delete from wix_engine.workflows w using doomed where w.id = doomed.id
    returning w.id`
  return rows.length
}

/** Where an incremental compaction resumes: (updated_at as text, to keep microseconds; id). */
export interface Watermark {
  at: string
  id: string
}

export const START: Watermark = { at: '1970-01-01T00:00:00Z', id: '00000000-0000-0000-0000-000000000000' }

/**
 * Drops the history and the ended jobs (with their attempts) of up to `limit` workflows matching
 * `f`, in (updated_at, id) order after `after`; the workflows stay. One that changes again moves
 * past the watermark and is compacted again once it matches.
 */
export async function compactWorkflows(sql: Sql, f: WorkflowFilter, after: Watermark, limit: number) {
  type Row = { workflows: number; history: number; jobs: number; last_at: string | null; last_id: string | null }
  const [r] = await sql<Row[]>`
    with batch as (
      select id, updated_at, effects from wix_engine.workflows
      where ${where(sql, f)} and (updated_at, id) > (${after.at}::timestamptz, ${after.id}::uuid)
      order by updated_at, id
      limit ${limit}
    ), history as (
      -- counted in events, one row holding each write's
      delete from wix_engine.workflow_history h using batch where h.workflow_id = batch.id
      returning jsonb_array_length(h.events) as events
    ), ended_jobs as (
      -- a live job is left alone, and a dead one (admins see it until deleteDeadJobs)
      delete from wix_engine.jobs j using batch
      where j.workflow_id = batch.id and j.status in ('done', 'failed', 'cancelled', 'discarded')
      returning 1
    ), ended_attempts as (
      -- the attempts of every job but those: a live effect's (in the row) tell its next run what
      -- the earlier ones did
      delete from wix_engine.job_attempts a using batch
      where a.workflow_id = batch.id
        and not batch.effects @> jsonb_build_array(jsonb_build_object('id', a.job_id::text))
        and not exists (select 1 from wix_engine.jobs j where j.id = a.job_id and j.status in ('pending', 'running', 'dead'))
    ), last as (
      select updated_at, id from batch order by updated_at desc, id desc limit 1
    )
    select (select count(*) from batch)::int as workflows, (select coalesce(sum(events), 0) from history)::int as history,
           (select count(*) from ended_jobs)::int as jobs,
           (select updated_at::text from last) as last_at, (select id from last) as last_id`
  // As text: a Date would drop the microseconds, and the watermark would fall behind its row.
  const next = r!.last_at ? { at: r!.last_at, id: r!.last_id! } : after
  return { workflows: r!.workflows, history: r!.history, jobs: r!.jobs, next }
}

/** Deletes up to `limit` jobs that ended dead before `cutoff`, with their attempts (their workflows stay). */
export async function deleteDeadJobs(sql: Sql, cutoff: Date, limit: number): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    with gone as (
      delete from wix_engine.jobs where id in (
        select id from wix_engine.jobs where status = 'dead' and updated_at < ${cutoff}
        limit ${limit}
        for update skip locked
      )
      returning id
    ), attempts as (
      delete from wix_engine.job_attempts a using gone where a.job_id = gone.id
    )
    select count(*)::int as n from gone`
  return row!.n
}

export type { WorkflowRow }
