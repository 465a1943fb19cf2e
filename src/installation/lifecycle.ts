import { createHash } from 'node:crypto'
import type { Sql } from 'postgres'
import type { InstallationInput } from '../../machines/installation.ts'
import type { Config } from '../config.ts'
import type { Engine } from '../engine/index.ts'
import { CODE_TTL_MS } from './flow.ts'
import { liveInstallations, newestInstallationId } from './queries.ts'
import type { TokenVault } from './token-vault.ts'

/** Postgres: unique_violation. */
const UNIQUE_VIOLATION = '23505'

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
export function createInstallationLifecycle(deps: { engine: Engine; sql: Sql; vault: TokenVault; config: Config }) {
  const { engine, sql, vault, config } = deps

  /**
   * `AppInstalled`: an install Wix completed by itself (a new app, a cloned site). An instance
   * with a live installation keeps it; otherwise a new installation confirms the install with a
   * client-credentials token and goes on from `Tokened` as any other.
   */
  async function installed(instanceId: string, originInstanceId: string | null): Promise<string> {
    const [live] = await liveInstallations(sql, instanceId)
    if (live) return `ignored: installation ${live.id} of this instance is live (${live.state})`
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
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) return `ignored: installation ${id} was started by a concurrent delivery`
      throw err
    }
    return `started installation ${id}`
  }

  /**
   * `AppRemoved`: every live installation of the instance ends `Uninstalled`, then its tokens are
   * erased — in that order, so an exchange still running cannot store tokens afterwards (it stores
   * only while its installation is `CodeReceived`).
   */
  async function removed(instanceId: string): Promise<string> {
    const ended: string[] = []
    for (const { id } of await liveInstallations(sql, instanceId)) {
      const r = await engine.send(id, { type: 'UNINSTALLED' }, { source: 'webhook:AppRemoved', machine: 'installation' })
      if (r.accepted) ended.push(id)
    }
    const erased = await vault.erase(instanceId)
    return `${ended.length ? `uninstalled ${ended.join(', ')}` : 'no live installation'}; ${erased ? 'tokens erased' : 'no tokens stored'}`
  }

  return { installed, removed }
}

export type InstallationLifecycle = ReturnType<typeof createInstallationLifecycle>
