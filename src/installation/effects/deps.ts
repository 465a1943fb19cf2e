import type { EarlierRun } from '../../engine/index.ts'
import type { RetryBudget } from '../../wix/retry-budget.ts'
import { TokenVaultError, type TokenVault, type WixTokens } from '../token-vault.ts'

export interface InstallationWix {
  exchangeCode(code: string, o?: { signal?: AbortSignal }): Promise<WixTokens>
  refreshAccessToken(refreshToken: string, o?: { signal?: AbortSignal }): Promise<WixTokens>
  instanceOf(accessToken: string, o?: { signal?: AbortSignal }): Promise<string>
  clientCredentials(instanceId: string, o?: { signal?: AbortSignal }): Promise<{ accessToken: string; expiresInMs: number }>
  sendBiEvent(accessToken: string, o?: { signal?: AbortSignal }): Promise<void>
}

/** What the installation's effects are bound to. */
export interface EffectDeps {
  wix: InstallationWix; vault: TokenVault; now: () => Date; retries?: RetryBudget
  /** The engine's record of a job's earlier runs (engine/queries.ts `earlierRuns`); without it no code counts as spent. */
  earlierRuns?: (idempotencyKey: string, attempt: number) => Promise<EarlierRun[]>
  /**
   * Called (at least once) when a browser flow has stored the tokens Wix confirmed for an
   * instance: ends that instance's webhook-started installations in its favour, returning their ids.
   */
  supersede?: (instanceId: string, byInstallationId: string) => Promise<string[]>
}

/** Any run after the first calls Wix again: it spends this instance's retry budget first. */
export const again = (retries: RetryBudget | undefined, attempt: number | undefined) => (attempt === undefined || attempt > 1) && retries?.take()

export const superseded = (instanceId: string) => new TokenVaultError('TOKENS_SUPERSEDED',
  `the tokens were not stored: a newer installation of instance ${instanceId} holds its tokens, or this one has ended`)
