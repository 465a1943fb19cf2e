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
