import { INSTALLATION_MACHINE_VERSION, installationMachine, type InstallationContext } from '../../machines/installation.ts'
import { defineWorkflow, type PersistedState } from '../engine/index.ts'
import { confirmInstall } from './effects/confirm-install.ts'
import type { EffectDeps } from './effects/deps.ts'
import { exchangeCode } from './effects/exchange-code.ts'
import { finishSetup } from './effects/finish-setup.ts'
import { claimKey } from './queries.ts'

export type { InstallationWix } from './effects/deps.ts'

/**
 * Version 1 kept the Redirect URL's instance id as the instance's; version 2 takes it only from
 * Wix. An installation still exchanging keeps the claim apart (its exchange verifies it).
 */
function migrate(state: PersistedState, from: number): PersistedState {
  if (from !== 1) throw new Error(`no migration from installation machine version ${from}`)
  const context = state.context as Record<string, unknown>
  const exchanging = state.value === 'CodeReceived'
  return {
    ...state,
    value: state.value === 'AppUrlHit' ? { AppUrlHit: 'redirecting' } : state.value,
    context: {
      ...context,
      claimedInstanceId: exchanging ? context.instanceId : null,
      instanceId: exchanging ? null : context.instanceId,
      originInstanceId: null,
    },
  }
}

/** The installation machine with its effects (in effects/, one a file) bound to Wix and the token vault. */
export function installationWorkflow(deps: EffectDeps) {
  const machine = installationMachine.provide({
    actors: { exchangeCode: exchangeCode(deps), confirmInstall: confirmInstall(deps), finishSetup: finishSetup(deps) },
  })
  return defineWorkflow({
    name: 'installation',
    version: INSTALLATION_MACHINE_VERSION,
    machine,
    // Enough attempts to outlast the 10-minute code deadline: while the code is valid, a down
    // Wix is worth waiting for; the deadline, not the budget, ends a hopeless exchange.
    retry: { maxAttempts: 30, baseDelayMs: 1_000, maxDelayMs: 60_000 },
    migrate,
    project: (state) => {
      const context = state.context as unknown as InstallationContext
      // Until Wix confirms an instance, the installation is found by its claim, marked as one.
      const key = context.instanceId ?? (context.claimedInstanceId ? claimKey(context.claimedInstanceId) : null)
      return { key, reason: context.failure?.reason ?? null }
    },
  })
}
