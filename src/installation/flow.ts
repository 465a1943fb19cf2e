import { randomUUID } from 'node:crypto'
import type { InstallationInput } from '../../machines/installation.ts'
import type { Config } from '../config.ts'
import { hashOAuthState, installationIdOf, newOAuthState, safeEqual } from '../crypto/oauth-state.ts'
import { EngineError, type AnyEvent, type Engine } from '../engine/index.ts'
import { Errors } from '../errors.ts'
import { createSendOn } from './send-on.ts'
import type { TokenVault } from './token-vault.ts'
import { contextOf } from './view.ts'

/** Wix codes are valid 10 minutes: past that, an exchange can only fail. */
export const CODE_TTL_MS = 10 * 60_000
/** How long a browser sent on may take to come back before setup counts as begun anyway. */
export const BROWSER_RETURN_TIMEOUT_MS = 15 * 60_000

export type { Destination } from './send-on.ts'


/**
 * The browser-facing steps of the Wix flow, free of HTTP: routes parse and answer, this decides.
 * Every check that fails throws a named 4xx before the installation or Wix is touched.
 */
export function createInstallFlow(deps: { engine: Engine; config: Config; vault: TokenVault }) {
  const { engine, config } = deps

  /** The Wix installer's URL for `state`, with the App URL's token when there is one. */
  function installerUrl(state: string, wixToken?: string) {
    const url = new URL(`${config.wix.wwwUrl}/installer/install`)
    if (wixToken) url.searchParams.set('token', wixToken)
    url.searchParams.set('appId', config.wix.appId)
    url.searchParams.set('redirectUrl', config.redirectUrl)
    url.searchParams.set('state', state)
    return url.toString()
  }
  const { destination, settled } = createSendOn({ ...deps, installerUrl })

  /** Steps 1–2: a new installation, sent to the Wix installer with a fresh state. */
  async function begin(origin: 'app-url' | 'platform', wixToken?: string) {
    const id = randomUUID()
    const state = newOAuthState(id)
    const input: InstallationInput = {
      id,
      origin,
      stateHash: hashOAuthState(state),
      closeWindow: config.closeWindow,
      autoFinish: config.autoFinish,
      consentTimeoutMs: config.consentTimeoutMs,
      codeTtlMs: CODE_TTL_MS,
      browserReturnTimeoutMs: BROWSER_RETURN_TIMEOUT_MS,
      // Kept sealed, for a browser that must go back to Wix for a new code (see `settled` in send-on.ts).
      appUrlToken: wixToken ? engine.sealer.seal(wixToken) : null,
    }
    const installation = await engine.create('installation', { ...input }, {
      source: origin === 'app-url' ? 'route:app-url' : 'route:install',
      events: origin === 'app-url' ? [{ type: 'INSTALLER_REDIRECTED' }] : [],
    })
    return { installation, state, installerUrl: installerUrl(state, wixToken) }
  }

  /**
   * Step 3: the state must match this browser's cookie (checked here) and the installation it
   * names (checked by the machine, against the hash it keeps, as it takes the event). Exactly one
   * event per state is ever accepted.
   */
  async function answer(state: string, cookieState: string | undefined, event: AnyEvent) {
    if (cookieState === undefined) throw new Errors.STATE_COOKIE_MISSING()
    if (!safeEqual(state, cookieState)) throw new Errors.STATE_MISMATCH()
    const stateHash = hashOAuthState(state)
    const r = await engine.send(installationIdOf(state), { ...event, stateHash }, { source: 'route:redirect', machine: 'installation' }).catch((err: unknown) => {
      if (err instanceof EngineError && err.code === 'WORKFLOW_NOT_FOUND') throw new Errors.STATE_UNKNOWN()
      throw err
    })
    if (r.accepted) return r.workflow
    const w = r.workflow
    if (contextOf(w).stateHash !== stateHash) throw new Errors.STATE_UNKNOWN()
    if (w.state === 'ConsentAbandoned' || w.state === 'Cancelled') throw new Errors.STATE_EXPIRED()
    // Cookie and hash both match: this browser's own state, come back (a reload, or a retry
    // after an answer it never got). Still a replay, but the browser may follow its installation.
    throw Object.assign(new Errors.STATE_ALREADY_USED(), { installationId: w.id })
  }

  /** Step 3: the code arrives. */
  const callback = (q: { code: string; state: string; instanceId: string }, cookieState: string | undefined) =>
    answer(q.state, cookieState, { type: 'CALLBACK', code: q.code, instanceId: q.instanceId })

  /** Wix sent the browser back with an OAuth error instead of a code (consent declined). */
  const decline = (q: { error: string; description?: string; state: string }, cookieState: string | undefined) =>
    answer(q.state, cookieState, { type: 'CONSENT_DECLINED', error: q.error, description: q.description })

  return { begin, callback, decline, destination, settled }
}

export type InstallFlow = ReturnType<typeof createInstallFlow>
