import type { Sql } from 'postgres'
import * as workflows from '../engine/queries.ts'
import type { WorkflowRow } from '../engine/store.ts'
import type { AttemptRow } from './view.ts'

/**
 * The installation's questions about its workflows, asked through the engine's read API: this
 * code never names the engine's tables.
 */

export const MACHINE = 'installation'
export const UUID = workflows.UUID

/** An installation by its id or, the newest for it, by its Wix instanceId: one statement. */
export const findInstallation = (sql: Sql, ref: string): Promise<WorkflowRow | undefined> =>
  workflows.findWorkflow(sql, MACHINE, ref)

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
 * The order a list is paged in. With a created-at filter, newest-created first (the window is a
 * range of an index, read in order, however many rows it holds); otherwise newest-updated first.
 */
export type ListOrder = workflows.ListOrder
export const listOrder = (f: Pick<ListFilter, 'createdFrom' | 'createdTo'>): ListOrder =>
  f.createdFrom || f.createdTo ? 'created' : 'updated'

/** One page of installations in `listOrder(f)`, by keyset (no offset: deep pages stay cheap). */
export const listInstallations = (sql: Sql, f: ListFilter) =>
  workflows.listWorkflows(sql, {
    machine: MACHINE, state: f.state, reason: f.reason, key: f.instanceId,
    createdFrom: f.createdFrom, createdTo: f.createdTo, updatedFrom: f.updatedFrom, updatedBefore: f.updatedTo,
  }, { order: listOrder(f), after: f.after, limit: f.limit })

/** Installations by state, failures by reason, and the job queue's depth and oldest wait. */
export async function installationStats(sql: Sql, now: Date) {
  const [counts, queue] = await Promise.all([workflows.countWorkflows(sql, MACHINE), workflows.queueStats(sql, now)])
  const byState = new Map<string, number>()
  const byReason = new Map<string, number>()
  for (const c of counts) {
    byState.set(c.state, (byState.get(c.state) ?? 0) + c.n)
    if (c.reason !== null) byReason.set(c.reason, (byReason.get(c.reason) ?? 0) + c.n)
  }
  return {
    byState: [...byState].map(([state, n]) => ({ state, n })),
    byReason: [...byReason].map(([reason, n]) => ({ reason, n })),
    jobs: { waiting: queue.waiting, running: queue.running, oldest: queue.oldest },
  }
}

/** Every finished run of every effect of one installation (each failed one, and the one that succeeded). */
export async function effectAttempts(sql: Sql, workflowId: string): Promise<AttemptRow[]> {
  const rows = await workflows.effectAttempts(sql, workflowId)
  return rows.map(({ job, ...r }) => ({ ...r, effect: job, error: r.error as AttemptRow['error'] }))
}

type Live = { id: string; state: string; created_at: Date }
const live = (rows: WorkflowRow[]): Live[] => rows.map((r) => ({ id: r.id, state: r.state, created_at: r.created_at }))

/** At most this many live installations of one instance are looked at: more is already a fault. */
const LIVE_LIMIT = 100

/**
 * An instance's live installations (not in a final state), newest first: those its key names and,
 * with `claimed`, those still exchanging a code whose Redirect URL claimed it (no key until Wix
 * confirms). A claim anyone can edit may end an installation (AppRemoved), never block one.
 */
export async function liveInstallations(sql: Sql, instanceId: string, o: { claimed: boolean }): Promise<Live[]> {
  const [keyed, claimed] = await Promise.all([
    workflows.listWorkflows(sql, { machine: MACHINE, key: instanceId, active: true }, { order: 'created', limit: LIVE_LIMIT }),
    o.claimed ? claimedBy(sql, instanceId) : [],
  ])
  const byId = new Map([...keyed, ...claimed].map((r) => [r.id, r]))
  return live([...byId.values()].sort((a, b) => b.created_at.getTime() - a.created_at.getTime() || (a.id < b.id ? 1 : -1)))
}

/** Installations exchanging a code whose Redirect URL named this instance. */
const claimedBy = (sql: Sql, instanceId: string) =>
  workflows.listWorkflows(sql, { machine: MACHINE, state: 'CodeReceived', active: true, context: { claimedInstanceId: instanceId } },
    { order: 'created', limit: LIVE_LIMIT })

/**
 * Whether a browser install may be on its way to this instance: one at the consent screen lately
 * (its instance unknown until the callback), or one exchanging a code that claims it.
 */
export async function browserInstallMayClaim(sql: Sql, instanceId: string, since: Date): Promise<boolean> {
  const [consenting, claimed] = await Promise.all([
    workflows.listWorkflows(sql, { machine: MACHINE, state: 'Authorizing', updatedFrom: since }, { order: 'updated', limit: 1 }),
    claimedBy(sql, instanceId),
  ])
  return consenting.length > 0 || claimed.length > 0
}

/** The newest installation of an instance, in any state. */
export async function newestInstallationId(sql: Sql, instanceId: string): Promise<string | undefined> {
  const [row] = await workflows.listWorkflows(sql, { machine: MACHINE, key: instanceId }, { order: 'created', limit: 1 })
  return row?.id
}
