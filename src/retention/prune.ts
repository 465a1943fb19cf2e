import type { Sql } from 'postgres'
import * as workflows from '../engine/index.ts'
import { MACHINE } from '../installation/queries.ts'

/** Rows one statement may delete (plus what hangs off them): short locks, small WAL bursts. */
export const BATCH = 500

/**
 * Ended installations (`states`) last changed before `cutoff`, with everything that hangs off
 * them (history, jobs, attempts): never one that still holds tokens, whatever its state.
 */
export const deleteEnded = (sql: Sql, states: string[], cutoff: Date): Promise<number> =>
  workflows.deleteWorkflows(sql, { machine: MACHINE, state: states, ended: true, updatedBefore: cutoff }, BATCH,
    (id) => sql`exists (select 1 from wix_install.instance_tokens t where t.workflow_id = ${id})`)

export type Watermark = workflows.Watermark
export const START = workflows.START

/**
 * History, finished jobs and their attempts of Finished installations last changed before
 * `cutoff`, after the watermark: the installation and its tokens stay.
 */
export const pruneFinished = (sql: Sql, cutoff: Date, after: Watermark) =>
  workflows.compactWorkflows(sql, { machine: MACHINE, state: 'Finished', updatedBefore: cutoff }, after, BATCH)

/** Jobs that ended dead before `cutoff` (their installation stays). */
export const pruneDeadJobs = (sql: Sql, cutoff: Date): Promise<number> => workflows.deleteDeadJobs(sql, cutoff, BATCH)

/** Processed webhook deliveries received before `cutoff`. */
export async function pruneWebhooks(sql: Sql, cutoff: Date): Promise<number> {
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
