import type { Sql } from 'postgres'
import { toWorkflow, type Engine, type Workflow } from '../engine/index.ts'
import { Errors } from '../errors.ts'
import * as q from './queries.ts'
import { UUID } from './queries.ts'
import { TokenVaultError, type TokenVault } from './token-vault.ts'
import { contextOf } from './view.ts'

/** How long the finish route holds the caller while the bi-event goes out. */
const FINISH_WAIT_MS = 10_000
/** States an admin may cancel: before any token exists. */
const CANCELLABLE = ['AppUrlHit', 'Authorizing', 'CodeReceived']
const HAS_TOKENS = ['Tokened', 'SetupIncomplete', 'Finished']


/** How a cursor names the order it belongs to. */
const ORDER_TAG = { created: 'c', updated: 'u' } as const satisfies Record<q.ListOrder, string>

/**
 * A cursor is opaque to callers: the order it belongs to, and where the last page ended in it
 * (that installation's created_at or updated_at, and its id), as base64url JSON `[tag, iso, id]`.
 */
export const encodeCursor = (order: q.ListOrder, w: { createdAt: Date; updatedAt: Date; id: string }) =>
  Buffer.from(JSON.stringify([ORDER_TAG[order], (order === 'created' ? w.createdAt : w.updatedAt).toISOString(), w.id])).toString('base64url')

/**
 * Where a page starts, for a list in `order`. A cursor of the other order (the created-at filters
 * were added or dropped between pages) would skip or repeat installations: it is rejected like a
 * forged one. Cursors issued before they named their order, `[iso, id]`, are of the updated order.
 */
export function decodeCursor(cursor: string, order: q.ListOrder): { at: Date; id: string } {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (!Array.isArray(parsed) || (parsed.length !== 2 && parsed.length !== 3)) throw new Error('bad cursor')
    const [tag, iso, id] = parsed.length === 2 ? [ORDER_TAG.updated, ...parsed] : parsed
    if (tag !== ORDER_TAG[order] || typeof iso !== 'string' || typeof id !== 'string') throw new Error('bad cursor')
    const at = new Date(iso)
    const year = at.getUTCFullYear()
    if (Number.isNaN(year) || year < 1 || year > 9999 || !UUID.test(id)) throw new Error('bad cursor')
    return { at, id }
  } catch {
    throw new Errors.INVALID_CURSOR()
  }
}

/** What admins and the app's backend do to installations, free of HTTP. */
export function createInstallationAdmin(deps: { engine: Engine; sql: Sql; vault: TokenVault; now: () => Date }) {
  const { engine, sql, vault, now } = deps

  async function find(idOrInstanceId: string): Promise<Workflow> {
    const row = await q.findInstallation(sql, idOrInstanceId)
    if (!row) throw new Errors.INSTALLATION_NOT_FOUND(idOrInstanceId)
    return toWorkflow(row)
  }

  async function list(filter: Omit<q.ListFilter, 'after' | 'limit'> & { limit: number; cursor?: string }) {
    const order = q.listOrder(filter)
    const after = filter.cursor ? decodeCursor(filter.cursor, order) : undefined
    const rows = await q.listInstallations(sql, { ...filter, after, limit: filter.limit + 1 })
    const page = rows.slice(0, filter.limit).map(toWorkflow)
    const last = page.at(-1)
    return { items: page, nextCursor: rows.length > filter.limit && last ? encodeCursor(order, last) : null }
  }

  /** Sends FINISH if the installation waits for it, then waits (bounded) for the bi-event. */
  async function finish(installation: Workflow): Promise<Workflow> {
    if (installation.statePath === 'SetupIncomplete.waiting') {
      installation = (await engine.send(installation.id, { type: 'FINISH' }, { source: 'route:finish' })).workflow
    }
    if (installation.statePath === 'SetupIncomplete.finishing') {
      installation = (await engine.waitFor(installation.id, (w) => w.statePath !== 'SetupIncomplete.finishing', FINISH_WAIT_MS))!
    }
    return installation
  }

  /**
   * Re-runs the effect that exhausted its retries: the bi-event. (A code exchange is retried
   * until the code's deadline passes; after that only a reinstall helps.)
   */
  async function retry(installation: Workflow): Promise<Workflow> {
    const c = contextOf(installation)
    if (installation.statePath === 'SetupIncomplete.waiting' && c.lastError) {
      return (await engine.send(installation.id, { type: 'FINISH' }, { source: 'admin:retry' })).workflow
    }
    throw new Errors.INSTALLATION_STATE_CONFLICT(
      `Installation is ${installation.statePath}${c.failure ? ` (${c.failure.reason})` : ''}: there is no exhausted effect to retry`,
    )
  }

  async function cancel(installation: Workflow): Promise<Workflow> {
    if (CANCELLABLE.includes(installation.state)) {
      const r = await engine.send(installation.id, { type: 'CANCEL' }, { source: 'admin:cancel' })
      if (r.accepted) return r.workflow
    }
    throw new Errors.INSTALLATION_STATE_CONFLICT(
      `Installation is ${installation.statePath}: only an installation before Tokened (${CANCELLABLE.join(', ')}) can be cancelled`,
    )
  }

  /** A fresh-enough access token for the app's backend; a rejected refresh token marks the installation. */
  async function accessToken(installation: Workflow) {
    if (installation.state === 'ReinstallRequired') throw new Errors.REINSTALL_REQUIRED()
    // The tokens were erased with the uninstall: nothing to mint, and no reason to ask Wix.
    if (installation.state === 'Uninstalled') throw new Errors.UNINSTALLED()
    if (!HAS_TOKENS.includes(installation.state)) throw new Errors.NO_TOKENS(installation.statePath)
    try {
      return await vault.accessToken(contextOf(installation).instanceId!, { minRemainingMs: 60_000 })
    } catch (err) {
      if (err instanceof TokenVaultError && err.code === 'REFRESH_TOKEN_REJECTED') {
        await engine.send(installation.id, { type: 'REFRESH_REJECTED', detail: err.message }, { source: 'route:access-token' })
        throw new Errors.REINSTALL_REQUIRED()
      }
      if (err instanceof TokenVaultError && err.code === 'NO_TOKENS') throw new Errors.NO_TOKENS(installation.statePath)
      if ((err as { code?: string }).code === 'WIX_CLIENT_REJECTED') throw new Errors.WIX_CREDENTIALS_REJECTED()
      if ((err as { retryable?: boolean }).retryable) throw new Errors.WIX_UNAVAILABLE()
      throw err
    }
  }

  /** Installations by state, failures by reason, the job queue, and jobs that ended dead, by reason. */
  async function stats() {
    const at = now()
    const [s, dead] = await Promise.all([q.installationStats(sql, at), engine.deadJobCounts()])
    return {
      installations: Object.fromEntries(s.byState.map((r) => [r.state, r.n])),
      failures: Object.fromEntries(s.byReason.map((r) => [r.reason, r.n])),
      jobs: {
        waiting: s.jobs.waiting,
        running: s.jobs.running,
        oldestWaitingSeconds: s.jobs.oldest ? Math.round((at.getTime() - s.jobs.oldest.getTime()) / 1000) : null,
        dead: dead.reduce<Record<string, number>>((all, d) => ({ ...all, [d.code]: (all[d.code] ?? 0) + d.n }), {}),
      },
    }
  }

  return { find, list, finish, retry, cancel, accessToken, stats, deadJobs: (limit: number) => engine.deadJobs(limit) }
}

export type InstallationAdmin = ReturnType<typeof createInstallationAdmin>
