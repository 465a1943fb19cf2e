import { randomUUID } from 'node:crypto'
import type { InstallationContext, InstallationInput } from '../../machines/installation.ts'
import type { Config } from '../config.ts'
import { hashOAuthState, installationIdOf, newOAuthState, safeEqual } from '../crypto/oauth-state.ts'
import { EngineError, type AnyEvent, type Engine, type Workflow } from '../engine/index.ts'
import { Errors } from '../errors.ts'
import type { TokenVault } from './token-vault.ts'

/** Wix codes are valid 10 minutes: past that, an exchange can only fail. */
export const CODE_TTL_MS = 10 * 60_000
/** How long a browser sent on may take to come back before setup counts as begun anyway. */
export const BROWSER_RETURN_TIMEOUT_MS = 15 * 60_000

export type Destination =
  | { kind: 'redirect'; url: string }
  /** `detour`: the browser is (or was) sent back through Wix's installer for a new code. */
  | { kind: 'pending'; detour?: boolean }
  /** Installed, and this browser was sent on before: nothing more to hand it. */
  | { kind: 'installed' }
  | { kind: 'failed'; failure: InstallationContext['failure'] }

const context = (w: Workflow) => w.context as unknown as InstallationContext

/**
 * The browser-facing steps of the Wix flow, free of HTTP: routes parse and answer, this decides.
 * Every check that fails throws a named 4xx before the installation or Wix is touched.
 */
export function createInstallFlow(deps: { engine: Engine; config: Config; vault: TokenVault }) {
  const { engine, config, vault } = deps

  /** The Wix installer's URL for `state`, with the App URL's token when there is one. */
  function installerUrl(state: string, wixToken?: string) {
    const url = new URL(`${config.wix.wwwUrl}/installer/install`)
    if (wixToken) url.searchParams.set('token', wixToken)
    url.searchParams.set('appId', config.wix.appId)
    url.searchParams.set('redirectUrl', config.redirectUrl)
    url.searchParams.set('state', state)
    return url.toString()
  }

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
      // Kept sealed, for a browser that must go back to Wix for a new code (see `settled`).
      appUrlToken: wixToken ? engine.sealer.seal(wixToken) : null,
    }
    const installation = await engine.create('installation', { ...input }, {
      source: origin === 'app-url' ? 'route:app-url' : 'route:install',
      events: origin === 'app-url' ? [{ type: 'INSTALLER_REDIRECTED' }] : [],
    })
    return { installation, state, installerUrl: installerUrl(state, wixToken) }
  }

  /** The App URL's token the installation still holds; none when it holds none, or its key was retired. */
  function appUrlTokenOf(w: Workflow): string | undefined {
    const sealed = context(w).appUrlToken
    if (!sealed) return undefined
    try {
      return engine.sealer.open(sealed)
    } catch {
      return undefined
    }
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
    if (context(w).stateHash !== stateHash) throw new Errors.STATE_UNKNOWN()
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

  /**
   * Step 6: where the browser goes once the exchange is over. The close-window URL carries an
   * access token, so it is handed out once, to the request whose BROWSER_SENT_ON was accepted
   * (`sentOn`), and only the token this installation itself stored: a replayed flow cookie gets
   * no token, and never one that a later installation of the same instance obtained.
   */
  async function destination(w: Workflow, sentOn: boolean): Promise<Destination> {
    // From a spent code until the new one is exchanged, the owner is told it is one more moment.
    if (w.state === 'CodeReceived') return { kind: 'pending', detour: (context(w).detours ?? 0) > 0 }
    if (sendsBack(w)) return { kind: 'pending', detour: true }
    if (!['Tokened', 'SetupIncomplete', 'Finished'].includes(w.state)) return { kind: 'failed', failure: context(w).failure }
    const { instanceId, closeWindow } = context(w)
    if (!closeWindow) {
      const u = new URL(config.postInstallUrl)
      u.searchParams.set('instanceId', instanceId!)
      return { kind: 'redirect', url: u.toString() }
    }
    const token = sentOn ? await vault.accessTokenOf(w.id) : undefined
    if (!token) return { kind: 'installed' }
    const u = new URL(`${config.wix.wwwUrl}/installer/close-window`)
    u.searchParams.set('access_token', token.accessToken)
    return { kind: 'redirect', url: u.toString() }
  }

  /** A code spent by a process that died: this installation's browser goes back to Wix for a new one. */
  const sendsBack = (w: Workflow) => w.state === 'Authorizing' && (context(w).detourPending === true || (context(w).detours ?? 0) > 0)

  /**
   * Waits, bounded, for the code exchange to end, then sends the browser on (BROWSER_SENT_ON)
   * from Tokened: in the exchange result's own write when the exchange ends in this process.
   * An exchange that ended with its code spent by a process that died sends this waiting browser
   * back through Wix's installer with a fresh state instead (`sentBack`: set its cookie, go there).
   * `signal` ends the wait early (the browser left), and then nothing is sent on its behalf.
   */
  async function settled(id: string, timeoutMs: number, signal?: AbortSignal) {
    const exchangeOver = (w: Workflow) => w.state !== 'CodeReceived'
    let back: { state: string; installerUrl: string } | undefined
    const sendOn = (w: Workflow): AnyEvent | undefined => {
      if (w.state === 'Tokened') return { type: 'BROWSER_SENT_ON', destination: context(w).closeWindow ? 'close-window' : 'post-install' }
      if (!sendsBack(w)) return undefined
      back ??= { state: newOAuthState(id), installerUrl: '' }
      back.installerUrl = installerUrl(back.state, appUrlTokenOf(w))
      return {
        type: 'BROWSER_SENT_BACK', stateHash: hashOAuthState(back.state),
        note: 'Wix refused the code: a process that died had spent it before storing the tokens. '
          + `The waiting browser was sent back through Wix's installer for a new code (${back.installerUrl.includes('token=') ? "with the App URL's token" : 'started anew, without a token'}).`,
      }
    }
    const r = await engine.waitAndSend(id, exchangeOver, sendOn, { source: 'route:redirect', timeoutMs, signal })
    const accepted = r.sent?.accepted === true
    return {
      installation: r.workflow,
      sentOn: accepted && r.sent?.workflow.state !== 'Authorizing',
      sentBack: accepted && r.sent?.workflow.state === 'Authorizing' ? back : undefined,
    }
  }

  return { begin, callback, decline, destination, settled }
}

export type InstallFlow = ReturnType<typeof createInstallFlow>
