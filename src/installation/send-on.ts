import type { InstallationContext } from '../../machines/installation.ts'
import type { Config } from '../config.ts'
import { hashOAuthState, newOAuthState } from '../crypto/oauth-state.ts'
import type { AnyEvent, Engine, Workflow } from '../engine/index.ts'
import type { TokenVault } from './token-vault.ts'
import { contextOf } from './view.ts'

export type Destination =
  | { kind: 'redirect'; url: string }
  /** `detour`: the browser is (or was) sent back through Wix's installer for a new code. */
  | { kind: 'pending'; detour?: boolean }
  /** Installed, and this browser was sent on before: nothing more to hand it. */
  | { kind: 'installed' }
  | { kind: 'failed'; failure: InstallationContext['failure'] }


/** A code spent by a process that died: this installation's browser goes back to Wix for a new one. */
const sendsBack = (w: Workflow) => w.state === 'Authorizing' && (contextOf(w).detourPending === true || (contextOf(w).detours ?? 0) > 0)

/**
 * The flow's last steps, free of HTTP: once the code exchange is over, the browser is sent on
 * (to the app, or Wix's close-window page) or back through Wix's installer for a new code.
 */
export function createSendOn(deps: {
  engine: Engine; config: Config; vault: TokenVault
  /** The Wix installer's URL for `state`, with the App URL's token when there is one. */
  installerUrl: (state: string, wixToken?: string) => string
}) {
  const { engine, config, vault, installerUrl } = deps

  /** The App URL's token the installation still holds; none when it holds none, or its key was retired. */
  function appUrlTokenOf(w: Workflow): string | undefined {
    const sealed = contextOf(w).appUrlToken
    if (!sealed) return undefined
    try {
      return engine.sealer.open(sealed)
    } catch {
      return undefined
    }
  }

  /**
   * Step 6: where the browser goes once the exchange is over. The close-window URL carries an
   * access token, so it is handed out once, to the request whose BROWSER_SENT_ON was accepted
   * (`sentOn`), and only the token this installation itself stored: a replayed flow cookie gets
   * no token, and never one that a later installation of the same instance obtained.
   */
  async function destination(w: Workflow, sentOn: boolean): Promise<Destination> {
    // From a spent code until the new one is exchanged, the owner is told it is one more moment.
    if (w.state === 'CodeReceived') return { kind: 'pending', detour: (contextOf(w).detours ?? 0) > 0 }
    if (sendsBack(w)) return { kind: 'pending', detour: true }
    if (!['Tokened', 'SetupIncomplete', 'Finished'].includes(w.state)) return { kind: 'failed', failure: contextOf(w).failure }
    const { instanceId, closeWindow } = contextOf(w)
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
      if (w.state === 'Tokened') return { type: 'BROWSER_SENT_ON', destination: contextOf(w).closeWindow ? 'close-window' : 'post-install' }
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

  return { destination, settled }
}
