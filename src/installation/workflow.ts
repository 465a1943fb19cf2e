import { fromPromise } from 'xstate'
import {
  INSTALLATION_MACHINE_VERSION,
  installationMachine,
  type ExchangeInput,
  type FinishInput,
  type InstallationContext,
} from '../../machines/installation.ts'
import { defineWorkflow, persistently } from '../engine/index.ts'
import type { TokenVault, WixTokens } from './token-vault.ts'

export interface InstallationWix {
  exchangeCode(code: string, o?: { signal?: AbortSignal }): Promise<WixTokens>
  sendBiEvent(accessToken: string, o?: { signal?: AbortSignal }): Promise<void>
}

/** The installation machine with its effects bound to Wix and the token vault. */
export function installationWorkflow(deps: { wix: InstallationWix; vault: TokenVault; now: () => Date }) {
  const { wix, vault, now } = deps
  const machine = installationMachine.provide({
    actors: {
      exchangeCode: fromPromise<{ exchangedAt: string }, ExchangeInput>(async ({ input, signal }) => {
        // A re-run (after a crash, a retry, a shutdown) finds the tokens an earlier run stored:
        // the code is spent, so calling Wix again could only fail. This is what makes the
        // exchange happen once. The first run has no earlier run to look for.
        const rerun = input.attempt === undefined || input.attempt > 1
        if (!rerun || !(await vault.exchangedBy(input.installationId))) {
          const tokens = await wix.exchangeCode(input.code, { signal })
          // The code is spent now: these tokens exist nowhere else. Ride out a database blip
          // rather than lose them to a retry that Wix would refuse.
          await persistently(() => vault.save(input.instanceId, input.installationId, tokens), { signal })
        }
        return { exchangedAt: now().toISOString() }
      }),
      finishSetup: fromPromise<{ finishedAt: string }, FinishInput>(async ({ input, signal }) => {
        const { accessToken } = await vault.accessToken(input.instanceId, { fresh: true, signal })
        await wix.sendBiEvent(accessToken, { signal })
        return { finishedAt: now().toISOString() }
      }),
    },
  })
  return defineWorkflow({
    name: 'installation',
    version: INSTALLATION_MACHINE_VERSION,
    machine,
    // Enough attempts to outlast the 10-minute code deadline: while the code is valid, a down
    // Wix is worth waiting for; the deadline, not the budget, ends a hopeless exchange.
    retry: { maxAttempts: 30, baseDelayMs: 1_000, maxDelayMs: 60_000 },
    project: (state) => {
      const context = state.context as unknown as InstallationContext
      return { key: context.instanceId ?? null, reason: context.failure?.reason ?? null }
    },
  })
}
