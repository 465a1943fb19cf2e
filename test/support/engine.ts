import type { Sql } from 'postgres'
import type { Logger, Sealer } from '../../src/engine/index.ts'

/** A clock tests move by hand: timers, leases and backoff all read it. */
export function testClock(start = new Date('2026-01-01T00:00:00Z')) {
  let now = start.getTime()
  return {
    now: () => new Date(now),
    advance(ms: number) {
      now += ms
    },
  }
}

export const silentLog: Logger = { debug() {}, info() {}, warn() {}, error() {} }

export const identitySealer: Sealer = { seal: (s) => s, open: (s) => s }

/**
 * History rows, jobs and attempts whose workflow is gone: no foreign key refuses them any more
 * (migrations/engine/003), so the engine's deletes must leave none.
 */
export async function orphans(sql: Sql) {
  const [row] = await sql<{ history: number; jobs: number; attempts: number }[]>`
    select
      (select count(*)::int from wix_engine.workflow_history h
       where not exists (select 1 from wix_engine.workflows w where w.id = h.workflow_id)) as history,
      (select count(*)::int from wix_engine.jobs j
       where not exists (select 1 from wix_engine.workflows w where w.id = j.workflow_id)) as jobs,
      (select count(*)::int from wix_engine.job_attempts a
       where not exists (select 1 from wix_engine.workflows w where w.id = a.workflow_id)) as attempts`
  return { ...row! }
}
export const NO_ORPHANS = { history: 0, jobs: 0, attempts: 0 }

/** A live effect as its workflow's row keeps it (migrations/engine/005). */
export interface RowEffect {
  id: string
  name: string
  src: string
  payload: string
  status: 'pending' | 'running'
  attempts: number
  run_at: string
  owner: string | null
  lease_until: string | null
}

/** A workflow's live effects (its row's `effects`), named `name` if given. */
export async function effectsOf(sql: Sql, workflowId: string, name?: string): Promise<RowEffect[]> {
  const [row] = await sql<{ effects: RowEffect[] }[]>`select effects from wix_engine.workflows where id = ${workflowId}`
  return (row?.effects ?? []).filter((e) => name === undefined || e.name === name)
}

/** Puts an effect into a workflow's row, due now unless `effect` says otherwise: what a claim then takes. */
export async function addEffect(sql: Sql, workflowId: string, effect: Partial<RowEffect> & Pick<RowEffect, 'id' | 'name' | 'payload'>) {
  const entry = { src: effect.name, status: 'pending', attempts: 0, run_at: new Date().toISOString(), owner: null, lease_until: null, ...effect }
  await sql`
    update wix_engine.workflows
    set effects = effects || ${sql.json([entry])}::jsonb, effect_due_at = wix_engine.effects_due(effects || ${sql.json([entry])}::jsonb)
    where id = ${workflowId}`
}

/**
 * A workflow's effect as a test sees it, wherever it is: live in its row (`lease_owner` its
 * owner), ended dead in `jobs` (with `last_error`), or gone (undefined: done, cancelled, discarded).
 */
export async function effectJob(sql: Sql, workflowId: string, name?: string) {
  const [live] = await effectsOf(sql, workflowId, name)
  if (live) return { id: live.id, status: live.status as string, attempts: live.attempts, lease_owner: live.owner, last_error: null }
  const [dead] = await sql<{ id: string; status: string; attempts: number; lease_owner: string | null; last_error: unknown }[]>`
    select id, status, attempts, lease_owner, last_error from wix_engine.jobs
    where workflow_id = ${workflowId} and kind = 'effect' ${name ? sql`and name = ${name}` : sql``}`
  return dead
}

/** Ends the leases of a workflow's running effects and timer jobs now: what a dead runner leaves. */
export async function expireLeases(sql: Sql, workflowId: string) {
  await sql`update wix_engine.jobs set lease_until = now() - interval '1 second' where workflow_id = ${workflowId} and status = 'running'`
  await sql`
    update wix_engine.workflows
    set effects = wix_engine.effects_patched(effects, '[{"status": "running"}]', jsonb_build_object('lease_until', now() - interval '1 second')),
        effect_due_at = now() - interval '1 second'
    where id = ${workflowId} and effects @> '[{"status": "running"}]'`
}
