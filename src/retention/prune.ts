import type { Sql } from 'postgres'

/** Rows one statement may delete (plus what cascades from them): short locks, small WAL bursts. */
export const BATCH = 500

/**
 * Ended installations (`states`) last changed before `cutoff`, with everything that hangs off
 * them (history, jobs, attempts): never one that still holds tokens, whatever its state.
 */
export async function deleteEnded(sql: Sql, states: string[], cutoff: Date): Promise<number> {
  const rows = await sql`
    with doomed as (
      select w.id from wix_engine.workflows w
      where w.machine = 'installation' and w.state = any(${states}::text[]) and w.updated_at < ${cutoff}
        and not exists (select 1 from wix_install.instance_tokens t where t.workflow_id = w.id)
      limit ${BATCH}
      for update skip locked
    )
    delete from wix_engine.workflows w using doomed where w.id = doomed.id
    returning w.id`
  return rows.length
}

export interface Watermark {
  at: string
  id: string
}

export const START: Watermark = { at: '1970-01-01T00:00:00Z', id: '00000000-0000-0000-0000-000000000000' }

/**
 * History, finished jobs and their attempts of Finished installations last changed before
 * `cutoff`, in (updated_at, id) order after `after`: the installation and its tokens stay. One
 * that changes again moves past the watermark and is pruned again once it is old.
 */
export async function pruneFinished(sql: Sql, cutoff: Date, after: Watermark) {
  type Row = { workflows: number; history: number; jobs: number; last_at: string | null; last_id: string | null }
  const [r] = await sql<Row[]>`
    with batch as (
      select id, updated_at from wix_engine.workflows
      where machine = 'installation' and state = 'Finished' and updated_at < ${cutoff}
        and (updated_at, id) > (${after.at}::timestamptz, ${after.id}::uuid)
      order by updated_at, id
      limit ${BATCH}
    ), history as (
      delete from wix_engine.workflow_history h using batch where h.workflow_id = batch.id returning 1
    ), jobs as (
      -- their attempts go with them (on delete cascade); a live job is left alone
      delete from wix_engine.jobs j using batch
      where j.workflow_id = batch.id and j.status in ('done', 'failed', 'cancelled', 'discarded')
      returning 1
    ), last as (
      select updated_at, id from batch order by updated_at desc, id desc limit 1
    )
    select (select count(*) from batch)::int as workflows, (select count(*) from history)::int as history,
           (select count(*) from jobs)::int as jobs,
           (select updated_at::text from last) as last_at, (select id from last) as last_id`
  // As text: a Date would drop the microseconds, and the watermark would fall behind its row.
  const next = r!.last_at ? { at: r!.last_at, id: r!.last_id! } : after
  return { workflows: r!.workflows, history: r!.history, jobs: r!.jobs, next }
}

/** Jobs that ended dead before `cutoff` (their installation stays). */
export async function pruneDeadJobs(sql: Sql, cutoff: Date): Promise<number> {
  const rows = await sql`
    delete from wix_engine.jobs where id in (
      select id from wix_engine.jobs where status = 'dead' and updated_at < ${cutoff}
      limit ${BATCH}
      for update skip locked
    )
    returning 1`
  return rows.length
}

/**
 * Processed webhook deliveries received before `cutoff`. The table comes with the webhooks
 * (migration 005): until it exists there is nothing to prune.
 */
export async function pruneWebhooks(sql: Sql, cutoff: Date): Promise<number> {
  const [table] = await sql<{ present: boolean }[]>`select to_regclass('wix_install.webhook_deliveries') is not null as present`
  if (!table!.present) return 0
  const rows = await sql`
    delete from wix_install.webhook_deliveries where id in (
      select id from wix_install.webhook_deliveries
      where processed_at is not null and processed_at < ${cutoff}
      limit ${BATCH}
      for update skip locked
    )
    returning 1`
  return rows.length
}
