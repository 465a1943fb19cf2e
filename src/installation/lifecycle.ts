import { createHash } from 'node:crypto'
import type { Sql } from 'postgres'
import type { InstallationInput } from '../../machines/installation.ts'
import type { Config } from '../config.ts'
import { PG } from '../db/connect.ts'
import type { Engine } from '../engine/index.ts'
import { CODE_TTL_MS } from './flow.ts'
import { liveInstallations, liveWebhookInstallations, newestInstallationId } from './queries.ts'
import type { TokenVault } from './token-vault.ts'

/** Clocks differ: an AppRemoved counts for installations begun up to this long after Wix signed it. */
const CLOCK_SLACK_MS = 30_000
/**
 * With WIX_AUTH_FLOW=legacy, how long a webhook-started installation waits (in its own, visible
 * state) for the owner's browser flow to bring a refresh token before confirming by client credentials.
 */
export const BROWSER_WAIT_MS = 2 * 60_000

/** What acting on a delivery did, or that it should wait and be tried again. */
export type LifecycleOutcome = { done: string } | { deferred: string }

/**
 * A browser flow Wix confirmed for `instanceId` (installation `byId`, holding the refresh token)
 * carries the install on: the instance's live webhook-started installations end, linked to it.
 * Idempotent: returns the installations it superseded now (a re-run finds none left to end).
 */
export async function supersedeWebhookInstalls(deps: { engine: Engine; sql: Sql }, instanceId: string, byId: string): Promise<string[]> {
  const { engine, sql } = deps
  const superseded: string[] = []
  for (const w of await liveWebhookInstallations(sql, instanceId)) {
    if (w.id === byId) continue
    const r = await engine.send(w.id, { type: 'SUPERSEDED', by: byId }, { source: 'effect:exchangeCode', machine: 'installation' })
    if (r.accepted) superseded.push(w.id)
  }
  return superseded
}

/**
 * The id of the installation an `AppInstalled` starts, derived from the instance and the
 * installation it follows: every process handling the same (or a repeated) event at the same
 * time derives the same id, so the database's primary key lets exactly one of them start it.
 */
function successorId(instanceId: string, previous: string | undefined): string {
  const h = createHash('sha256').update(`installation:${instanceId}:after:${previous ?? 'none'}`).digest('hex')
  // An RFC 9562 version 8 (custom) UUID.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

/** Wix did not answer: nothing is known of the instance. */
const WIX_SILENT = new Set(['WIX_UNAVAILABLE', 'WIX_RATE_LIMITED', 'WIX_NETWORK', 'WIX_TIMEOUT'])

/** What Wix's lifecycle webhooks do to installations, free of HTTP. Each returns what it did. */
export function createInstallationLifecycle(deps: { engine: Engine; sql: Sql; vault: TokenVault; config: Config }) {
  const { engine, sql, vault, config } = deps

  /**
   * `AppInstalled`: an install Wix completed by itself (a new app, a cloned site). An instance
   * with a live installation keeps it; otherwise a new installation starts at once: it confirms
   * the install with a client-credentials token and goes on from `Tokened` as any other, unless
   * it waits a bounded time for a legacy browser flow (`WIX_AUTH_FLOW=legacy`), is a clone the
   * owner must reinstall (`CLONED_SITE_POLICY=reinstall`), or is superseded by a browser flow.
   */
  async function installed(instanceId: string, originInstanceId: string | null): Promise<LifecycleOutcome> {
    const [live] = await liveInstallations(sql, instanceId, { claimed: false })
    if (live) return { done: `ignored: installation ${live.id} of this instance is live (${live.state})` }
    // Started at once, whatever other sites' browsers do. A legacy app gets AppInstalled as its
    // owner approves, the browser still on its way to the Redirect URL: if that flow stores a
    // refresh token for this instance, it takes over from this installation (both say so).
    const id = successorId(instanceId, await newestInstallationId(sql, instanceId))
    const input: InstallationInput = {
      id,
      origin: 'webhook',
      stateHash: null,
      instanceId,
      originInstanceId,
      closeWindow: false,
      autoFinish: config.autoFinish,
      consentTimeoutMs: config.consentTimeoutMs,
      codeTtlMs: CODE_TTL_MS,
      // No browser will come back: Tokened moves on to SetupIncomplete at once.
      browserReturnTimeoutMs: 0,
      // Only an app on the legacy flow alone waits, visibly, for the owner's browser to come back.
      browserWaitMs: config.wixAuthFlow === 'legacy' ? BROWSER_WAIT_MS : 0,
      reinstallClone: config.clonedSitePolicy === 'reinstall',
    }
    try {
      await engine.create('installation', { ...input }, { source: 'webhook:AppInstalled' })
    } catch (err) {
      if ((err as { code?: string }).code === PG.UNIQUE_VIOLATION) return { done: `ignored: installation ${id} was started by a concurrent delivery` }
      throw err
    }
    return { done: `started installation ${id}` }
  }

  /**
   * `AppRemoved`: the instance's live installations begun before Wix signed it end `Uninstalled`,
   * then their tokens are erased — in that order, so an exchange still running cannot store
   * tokens afterwards (it stores only while its installation is `CodeReceived`). Only an
   * installation Wix confirmed counts as begun after the event (a reinstall): a claim anyone can
   * edit never keeps a site installed. Before anything ends, Wix is asked: while the instance's
   * tokens still work, the app is on the site and the event is stale (a late resend Wix re-signed).
   */
  async function removed(instanceId: string, issuedAt: Date | null): Promise<LifecycleOutcome> {
    const live = await liveInstallations(sql, instanceId, { claimed: true })
    // Begun after Wix signed the event (a reinstall, or a claim still exchanging): left alone.
    const begunAfter = (w: { created_at: Date }) => issuedAt !== null && w.created_at.getTime() > issuedAt.getTime() + CLOCK_SLACK_MS
    const doomed = live.filter((w) => !begunAfter(w))
    const newer = live.filter((w) => w.confirmed && begunAfter(w))
    if (!doomed.length && newer.length) return { done: `ignored: signed before installation ${newer[0]!.id} began` }
    if (doomed.some((w) => w.confirmed)) {
      const stale = await stillInstalled(instanceId)
      if (stale === 'unknown') return { deferred: 'Wix could not be asked whether the app is still on the site' }
      if (stale) return { done: `ignored: stale — Wix still grants tokens for this instance (${stale})` }
    }
    const ended: string[] = []
    for (const { id } of doomed) {
      const r = await engine.send(id, { type: 'UNINSTALLED' }, { source: 'webhook:AppRemoved', machine: 'installation' })
      if (r.accepted) ended.push(id)
    }
    await vault.dropHeld(doomed.map((w) => w.id))
    const erased = await vault.erase(instanceId, { except: newer.map((w) => w.id) })
    const kept = newer.length ? `; installation ${newer.map((w) => w.id).join(', ')} begun after it is kept` : ''
    return { done: `${ended.length ? `uninstalled ${ended.join(', ')}` : 'no live installation'}; ${erased ? 'tokens erased' : 'no tokens stored'}${kept}` }
  }

  /**
   * Whether Wix still grants this instance a token: the stored refresh token, else client
   * credentials. Only a grant proves the event stale. A refusal of any kind agrees with it, or
   * says nothing about this site (the app's own credentials refused, or refusals nobody can
   * explain): the signed event is acted on. Only Wix not answering leaves it unknown.
   */
  async function stillInstalled(instanceId: string): Promise<string | false | 'unknown'> {
    try {
      await vault.accessToken(instanceId, { fresh: true })
      return 'a fresh access token was granted'
    } catch (err) {
      return WIX_SILENT.has((err as { code?: string }).code ?? '') ? 'unknown' : false
    }
  }

  return { installed, removed }
}

export type InstallationLifecycle = ReturnType<typeof createInstallationLifecycle>
