import type { Sql } from 'postgres'
import type { WorkflowRow } from '../engine/index.ts'
import * as workflows from '../engine/index.ts'
import { WIX_GUID } from '../wix/ids.ts'
import type { AttemptRow } from './view.ts'

/**
 * The installation's questions about its workflows, asked through the engine's read API: this
 * code never names the engine's tables.
 */

export const MACHINE = 'installation'
export const UUID = workflows.UUID

/**
 * The key of an installation whose Redirect URL claimed an instance that Wix has not confirmed
 * (yet, or ever): kept apart from the confirmed key, so a claim is found as a claim and never
 * hides, takes or blocks the installation Wix confirmed.
 */
export const claimKey = (instanceId: string) => `claim:${instanceId.toLowerCase()}`

/**
 * An installation by its id or, by a Wix instanceId, the newest one Wix confirmed for it; with
 * none, the newest that only claims it. A newer claim never hides a confirmed installation, and
 * a webhook-started installation that a browser flow superseded gives way to that one.
 */
export async function findInstallation(sql: Sql, ref: string): Promise<WorkflowRow | undefined> {
  const byId = UUID.test(ref) ? await workflows.findWorkflow(sql, MACHINE, ref) : undefined
  if (byId?.id === ref.toLowerCase()) return byId
  if (!WIX_GUID.test(ref)) return undefined
  // No id matched, so that statement fell back to the newest installation keyed by `ref`: one Wix
  // confirmed and nobody superseded is what the list below would find first. The app's backend
  // finishes by instanceId, so this spares a statement on every finish. (Two installations of one
  // instance created in the same millisecond are equally "the newest"; the list breaks that tie by id.)
  if (byId && byId.key === ref.toLowerCase() && byId.state !== 'Superseded') return byId
  for (const key of [ref.toLowerCase(), claimKey(ref)]) {
    const rows = await workflows.listWorkflows(sql, { machine: MACHINE, key }, { order: 'created', limit: SUPERSEDED_LOOKAHEAD })
    const found = rows.find((r) => r.state !== 'Superseded') ?? rows[0]
    if (found) return found
  }
  return undefined
}

/** Superseded installations are started only by signed AppInstalled deliveries: a few per instance at most. */
const SUPERSEDED_LOOKAHEAD = 10

/** The webhook-started installations that installation `id` (of instance `instanceId`) superseded. */
export const supersededBy = async (sql: Sql, instanceId: string, id: string): Promise<string[]> =>
  (await workflows.listWorkflows(sql, { machine: MACHINE, key: instanceId, state: 'Superseded', context: { supersededBy: id } },
    { order: 'created', limit: LIVE_LIMIT })).map((r) => r.id)

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
    machine: MACHINE, state: f.state, reason: f.reason, key: f.instanceId && [f.instanceId.toLowerCase(), claimKey(f.instanceId)],
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

/** `confirmed`: Wix confirmed the instance (its key); otherwise the installation only claims it. */
type Live = { id: string; state: string; created_at: Date; confirmed: boolean }
const live = (rows: WorkflowRow[]): Live[] =>
  rows.map((r) => ({ id: r.id, state: r.state, created_at: r.created_at, confirmed: !r.key?.startsWith('claim:') }))

/** At most this many live installations of one instance are looked at: more is already a fault. */
const LIVE_LIMIT = 100

/**
 * An instance's live installations (not in a final state), newest first: those Wix confirmed
 * for it and, with `claimed`, those still exchanging a code whose Redirect URL claimed it. A claim
 * anyone can edit may end an installation (AppRemoved), never block or hide one.
 */
export async function liveInstallations(sql: Sql, instanceId: string, o: { claimed: boolean }): Promise<Live[]> {
  const key = o.claimed ? [instanceId, claimKey(instanceId)] : instanceId
  return live(await workflows.listWorkflows(sql, { machine: MACHINE, key, active: true }, { order: 'created', limit: LIVE_LIMIT }))
}

/** An instance's live installations begun by the AppInstalled webhook. */
export const liveWebhookInstallations = async (sql: Sql, instanceId: string): Promise<Live[]> =>
  live(await workflows.listWorkflows(sql, { machine: MACHINE, key: instanceId, active: true, context: { origin: 'webhook' } },
    { order: 'created', limit: LIVE_LIMIT }))

/** The newest installation of an instance, in any state. */
export async function newestInstallationId(sql: Sql, instanceId: string): Promise<string | undefined> {
  const [row] = await workflows.listWorkflows(sql, { machine: MACHINE, key: instanceId }, { order: 'created', limit: 1 })
  return row?.id
}
