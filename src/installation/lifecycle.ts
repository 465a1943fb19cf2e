import { createHash } from 'node:crypto'
import type { Sql } from 'postgres'
import type { InstallationInput } from '../../machines/installation.ts'
import type { Config } from '../config.ts'
import type { Engine } from '../engine/index.ts'
import { CODE_TTL_MS } from './flow.ts'
import { browserInstallMayClaim, liveInstallations, newestInstallationId } from './queries.ts'
import type { TokenVault } from './token-vault.ts'

/** Postgres: unique_violation. */
const UNIQUE_VIOLATION = '23505'
/** How recently a browser must have reached the consent screen to be worth waiting for. */
const CONSENT_WINDOW_MS = 2 * 60_000
/** Clocks differ: an AppRemoved counts for installations begun up to this long after Wix signed it. */
const CLOCK_SLACK_MS = 30_000

/** What acting on a delivery did, or that it should wait and be tried again. */
export type LifecycleOutcome = { done: string } | { deferred: string }

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

/** What Wix's lifecycle webhooks do to installations, free of HTTP. Each returns what it did. */
export function createInstallationLifecycle(deps: { engine: Engine; sql: Sql; vault: TokenVault; config: Config; now: () => Date }) {
  const { engine, sql, vault, config, now } = deps

  /**
   * `AppInstalled`: an install Wix completed by itself (a new app, a cloned site). An instance
   * with a live installation keeps it; otherwise a new installation confirms the install with a
   * client-credentials token and goes on from `Tokened` as any other.
   */
  async function installed(instanceId: string, originInstanceId: string | null, o: { mayDefer: boolean }): Promise<LifecycleOutcome> {
    const [live] = await liveInstallations(sql, instanceId, { claimed: false })
    if (live) return { done: `ignored: installation ${live.id} of this instance is live (${live.state})` }
    // A legacy app gets AppInstalled as its owner approves, while the browser is still on its way
    // back to the Redirect URL: give that flow the moment it needs to name the instance.
    if (o.mayDefer && (await browserInstallMayClaim(sql, instanceId, new Date(now().getTime() - CONSENT_WINDOW_MS)))) {
      return { deferred: 'a browser install may be about to claim this instance' }
    }
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
    }
    try {
      await engine.create('installation', { ...input }, { source: 'webhook:AppInstalled' })
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) return { done: `ignored: installation ${id} was started by a concurrent delivery` }
      throw err
    }
    return { done: `started installation ${id}` }
  }

  /**
   * `AppRemoved`: every live installation of the instance ends `Uninstalled`, then its tokens are
   * erased — in that order, so an exchange still running cannot store tokens afterwards (it stores
   * only while its installation is `CodeReceived`).
   */
  async function removed(instanceId: string, issuedAt: Date | null): Promise<LifecycleOutcome> {
    const live = await liveInstallations(sql, instanceId, { claimed: true })
    // A late retry of an old AppRemoved must not end the installation that followed it.
    const newer = issuedAt ? live.filter((w) => w.created_at.getTime() > issuedAt.getTime() + CLOCK_SLACK_MS) : []
    if (newer.length) return { done: `ignored: signed before installation ${newer[0]!.id} began` }
    const ended: string[] = []
    for (const { id } of live) {
      const r = await engine.send(id, { type: 'UNINSTALLED' }, { source: 'webhook:AppRemoved', machine: 'installation' })
      if (r.accepted) ended.push(id)
    }
    await vault.dropHeld(live.map((w) => w.id))
    const erased = await vault.erase(instanceId)
    return { done: `${ended.length ? `uninstalled ${ended.join(', ')}` : 'no live installation'}; ${erased ? 'tokens erased' : 'no tokens stored'}` }
  }

  return { installed, removed }
}

export type InstallationLifecycle = ReturnType<typeof createInstallationLifecycle>
