import type { Sql } from 'postgres'
import type { WorkflowRow } from '../engine/store.ts'
import type { AttemptRow } from './view.ts'

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** An installation by its id or, the newest for it, by its Wix instanceId: one statement. */
export async function findInstallation(sql: Sql, ref: string): Promise<WorkflowRow | undefined> {
  const id = UUID.test(ref) ? ref : null
  const [row] = await sql<WorkflowRow[]>`
    select * from wix_engine.workflows
    where machine = 'installation' and (id = ${id}::uuid or key = ${ref})
    order by (id = ${id}::uuid) is true desc, created_at desc
    limit 1`
  return row
}

/** An installation's id, by its id or, the newest for it, by its Wix instanceId. */
export async function findInstallationId(sql: Sql, idOrInstanceId: string): Promise<string | undefined> {
  const byId = UUID.test(idOrInstanceId)
    ? await sql<{ id: string }[]>`select id from wix_engine.workflows where id = ${idOrInstanceId} and machine = 'installation'`
    : []
  if (byId[0]) return byId[0].id
  return newestInstallationId(sql, idOrInstanceId)
}

export interface ListFilter {
  state?: string
  reason?: string
  instanceId?: string
  createdFrom?: Date
  createdTo?: Date
  updatedFrom?: Date
  updatedTo?: Date
  /** Where the previous page ended, in `listOrder(filter)`: its created_at or updated_at, and its id. */
  after?: { at: Date; id: string }
  limit: number
}

/**
 * The order a list is paged in. With a created-at filter, newest-created first: the window is a
 * range of workflows_created_idx, read in order, however many rows it holds. Otherwise
 * newest-updated first (workflows_updated_idx, or the state and reason indexes). Ties by id.
 */
export type ListOrder = 'created' | 'updated'
export const listOrder = (f: Pick<ListFilter, 'createdFrom' | 'createdTo'>): ListOrder =>
  f.createdFrom || f.createdTo ? 'created' : 'updated'

/** One page of installations in `listOrder(f)`, by keyset (no offset: deep pages stay cheap). */
export async function listInstallations(sql: Sql, f: ListFilter) {
  const created = listOrder(f) === 'created'
  // A cursor at or past the window's end excludes nothing more, but as a row comparison Postgres
  // would start the index scan from it, reading every entry between it and the window: drop it.
  const end = created ? f.createdTo : f.updatedTo
  const after = f.after && !(end && f.after.at >= end) ? f.after : undefined
  return sql<WorkflowRow[]>`
    select * from wix_engine.workflows
    where machine = 'installation'
      ${f.state ? sql`and state = ${f.state}` : sql``}
      ${f.reason ? sql`and reason = ${f.reason}` : sql``}
      ${f.instanceId ? sql`and key = ${f.instanceId}` : sql``}
      ${f.createdFrom ? sql`and created_at >= ${f.createdFrom}` : sql``}
      ${f.createdTo ? sql`and created_at < ${f.createdTo}` : sql``}
      ${f.updatedFrom ? sql`and updated_at >= ${f.updatedFrom}` : sql``}
      ${f.updatedTo ? sql`and updated_at < ${f.updatedTo}` : sql``}
      ${!after ? sql``
        : created ? sql`and (created_at, id) < (${after.at}, ${after.id}::uuid)`
        : sql`and (updated_at, id) < (${after.at}, ${after.id}::uuid)`}
    ${created ? sql`order by created_at desc, id desc` : sql`order by updated_at desc, id desc`}
    limit ${f.limit}`
}

/** Installations by state, failures by reason, and the job queue's depth and oldest wait. */
export async function installationStats(sql: Sql, now: Date) {
  const [byState, byReason, [jobs]] = await Promise.all([
    sql<{ state: string; n: number }[]>`
      select state, count(*)::int as n from wix_engine.workflows where machine = 'installation' group by state`,
    sql<{ reason: string; n: number }[]>`
      select reason, count(*)::int as n from wix_engine.workflows
      where machine = 'installation' and reason is not null group by reason`,
    sql<{ waiting: number; running: number; oldest: Date | null }[]>`
      select count(*) filter (where status = 'pending' and run_at <= ${now})::int as waiting,
             count(*) filter (where status = 'running')::int as running,
             min(run_at) filter (where status = 'pending' and run_at <= ${now}) as oldest
      from wix_engine.jobs where status in ('pending', 'running')`,
  ])
  return { byState, byReason, jobs: jobs! }
}

/** Every run of every effect of one installation, oldest first. */
export async function effectAttempts(sql: Sql, workflowId: string) {
  return sql<AttemptRow[]>`
    select coalesce(j.src, j.name) as effect, a.attempt, a.outcome, a.started_at, a.finished_at, a.error
    from wix_engine.job_attempts a join wix_engine.jobs j on j.id = a.job_id
    where a.workflow_id = ${workflowId} and j.kind = 'effect'
    order by a.started_at, a.attempt`
}

/**
 * An instance's live installations (not in a final state), newest first: those its key names and,
 * with `claimed`, those still exchanging a code whose Redirect URL claimed it (no key until Wix
 * confirms). A claim anyone can edit may end an installation (AppRemoved), never block one.
 */
export async function liveInstallations(sql: Sql, instanceId: string, o: { claimed: boolean }) {
  return sql<{ id: string; state: string; created_at: Date }[]>`
    select id, state, created_at from wix_engine.workflows
    where machine = 'installation' and snapshot ->> 'status' = 'active'
      and (key = ${instanceId}
        ${o.claimed ? sql`or (state = 'CodeReceived' and snapshot -> 'context' ->> 'claimedInstanceId' = ${instanceId})` : sql``})
    order by created_at desc`
}

/**
 * Whether a browser install may be on its way to this instance: one at the consent screen lately
 * (its instance unknown until the callback), or one exchanging a code that claims it.
 */
export async function browserInstallMayClaim(sql: Sql, instanceId: string, since: Date): Promise<boolean> {
  const [row] = await sql<{ pending: boolean }[]>`
    select exists (
      select 1 from wix_engine.workflows where machine = 'installation'
        and ((state = 'Authorizing' and updated_at > ${since})
          or (state = 'CodeReceived' and snapshot -> 'context' ->> 'claimedInstanceId' = ${instanceId}))
    ) as pending`
  return row!.pending
}

/** The newest installation of an instance, in any state. */
export async function newestInstallationId(sql: Sql, instanceId: string): Promise<string | undefined> {
  const [row] = await sql<{ id: string }[]>`
    select id from wix_engine.workflows where machine = 'installation' and key = ${instanceId}
    order by created_at desc limit 1`
  return row?.id
}
