import { fromPromise } from 'xstate'
import type { ConfirmInput, ConfirmOutput } from '../../../machines/installation.ts'
import { persistently } from '../../engine/index.ts'
import { WixApiError } from '../../wix/client.ts'
import { again, superseded, type EffectDeps } from './deps.ts'

/** The `confirmInstall` effect: a webhook-started install, confirmed by a client-credentials grant. */
export function confirmInstall(deps: EffectDeps) {
  const { wix, vault, now } = deps
  return fromPromise<ConfirmOutput, ConfirmInput>(async ({ input, signal }) => {
    // Wix grants a client-credentials token for an instance only while the app is installed
    // there: the token is the proof, and the first one is kept for the app's backend.
    again(deps.retries, (input as ConfirmInput & { attempt?: number }).attempt)
    const obtainedAt = now()
    const token = await wix.clientCredentials(input.instanceId, { signal }).catch(async (err: unknown) => {
      // A refusal ends the install only when Wix grants the app elsewhere: refused alike, or
      // with nothing to compare, it may be the app's own secret, and the install waits.
      // Wix labels a 401 as the app's: the verdict is the evidence's, as for a refused mint.
      const e = err as WixApiError
      if (e.code !== 'WIX_REJECTED' && e.code !== 'WIX_CLIENT_REJECTED') throw err
      if ((await vault.explainRefusal(input.instanceId, null, signal)) === 'instance') {
        if (e.code === 'WIX_REJECTED') throw err
        throw new WixApiError({ ...e, message: e.message, code: 'WIX_REJECTED', retryable: false })
      }
      throw new WixApiError({
        code: 'WIX_CLIENT_REJECTED', endpoint: 'oauth2/token', retryable: true,
        status: (err as { status?: number }).status,
        message: `${(err as Error).message}; Wix refuses other instances alike, or there is none to compare: ` +
          'taken for the app\'s credentials (check WIX_APP_ID and WIX_APP_SECRET), and confirmed again',
      })
    })
    const expiresAt = new Date(obtainedAt.getTime() + Math.max(0, token.expiresInMs - 60_000))
    const saved = await persistently(() => vault.save(input.instanceId, input.installationId,
      { accessToken: token.accessToken, refreshToken: null, expiresAt }, ['AppUrlHit']), { signal })
    if (!saved) {
      // A browser flow of this install stored its refresh token first: it carries the install on.
      const holder = await vault.holderOf(input.instanceId)
      if (holder?.refreshToken && holder.workflowId !== input.installationId) {
        return { confirmedAt: now().toISOString(), supersededBy: holder.workflowId }
      }
      throw superseded(input.instanceId)
    }
    return { confirmedAt: now().toISOString() }
  })
}
