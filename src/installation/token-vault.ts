/**
 * The token vault: each Wix instance's tokens, and the access tokens its callers ask for.
 *
 * This file is its door; the parts live in token-vault/:
 * - tokens.ts: what the parts share (token shapes, the Wix calls that mint, the vault's errors);
 * - held-tokens.ts: an exchange's tokens, held by its installation when they could not be filed at once;
 * - instance-tokens.ts: each instance's tokens, filed under the installation's fence;
 * - access-tokens.ts: the stored access token, or a fresh one, minted once for concurrent callers;
 * - minting.ts: a new access token from Wix (refresh token, else client credentials);
 * - refusals.ts: whose fault Wix's refusal was, judged from evidence.
 */
import { createAccessTokens } from './token-vault/access-tokens.ts'
import { createHeldTokens } from './token-vault/held-tokens.ts'
import { createInstanceTokens } from './token-vault/instance-tokens.ts'
import { createMinter } from './token-vault/minting.ts'
import { createRefusalJudge } from './token-vault/refusals.ts'
import type { TokenVaultOptions } from './token-vault/tokens.ts'

export { ACCESS_TOKEN_TTL_MS, TokenVaultError } from './token-vault/tokens.ts'
export type { AccessToken, NewTokens, ObtainedTokens, RefusalVerdict, TokenMinter, WixTokens } from './token-vault/tokens.ts'

/**
 * Each Wix instance's tokens, encrypted at rest, stored by the installation that obtained them.
 * A newer installation of an instance replaces them; an older one never overwrites a newer one's.
 * Minting is single-flight per instance in this process: concurrent callers share one call to Wix.
 */
export function createTokenVault(opts: TokenVaultOptions) {
  const holding = createHeldTokens(opts)
  const filed = createInstanceTokens(opts)
  const { explainRefusal, refusalError } = createRefusalJudge(opts)
  const { mint } = createMinter({ ...opts, refusalError })
  const access = createAccessTokens({ ...opts, mint, exchangedBy: filed.exchangedBy })
  return { ...filed, ...holding, ...access, explainRefusal }
}

export type TokenVault = ReturnType<typeof createTokenVault>
