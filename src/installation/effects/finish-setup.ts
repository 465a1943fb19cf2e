import { fromPromise } from 'xstate'
import type { FinishInput } from '../../../machines/installation.ts'
import { again, type EffectDeps } from './deps.ts'

/** The `finishSetup` effect: the bi-event that tells Wix setup is done, with a token minted for it. */
export function finishSetup(deps: EffectDeps) {
  const { wix, vault, now } = deps
  return fromPromise<{ finishedAt: string }, FinishInput>(async ({ input, signal }) => {
    again(deps.retries, (input as FinishInput & { attempt?: number }).attempt)
    const { accessToken } = await vault.accessToken(input.instanceId, { fresh: true, signal })
    await wix.sendBiEvent(accessToken, { signal })
    return { finishedAt: now().toISOString() }
  })
}
