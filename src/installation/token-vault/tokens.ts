import type { Sql } from 'postgres'
import type { TokenCipher } from '../../crypto/token-cipher.ts'

/** Wix access tokens from `/oauth/access` live 5 minutes and the answer carries no `expires_in`. */
export const ACCESS_TOKEN_TTL_MS = 5 * 60_000

export interface WixTokens {
  accessToken: string
  refreshToken: string
}

/** Tokens from a code exchange, with when they were asked for: their access token's 5 minutes run from then. */
export type ObtainedTokens = WixTokens & { obtainedAt: Date }

export interface TokenMinter {
  refreshAccessToken(refreshToken: string, o?: { signal?: AbortSignal }): Promise<WixTokens>
  clientCredentials(instanceId: string, o?: { signal?: AbortSignal }): Promise<{ accessToken: string; expiresInMs: number }>
  /** What Wix says of a token; needs no app secret. Without it, refusals are judged by other instances alone. */
  tokenInfo?(token: string, o?: { signal?: AbortSignal }): Promise<{ active: boolean }>
}

/**
 * Whose fault a refusal was, from evidence: `instance` (Wix says the instance's tokens are gone,
 * or grants another instance what it refused this one), `app` (other instances are refused alike:
 * the app's id or secret), or `unknown` (nothing told either way).
 */
export type RefusalVerdict = 'instance' | 'app' | 'unknown'

export class TokenVaultError extends Error {
  constructor(
    readonly code: 'NO_TOKENS' | 'REFRESH_TOKEN_REJECTED' | 'TOKENS_SUPERSEDED' | 'REFUSAL_UNEXPLAINED',
    message: string,
    readonly retryable = false,
  ) {
    super(message)
  }
  toJSON() {
    return { code: this.code, message: this.message, retryable: this.retryable }
  }
}

export interface AccessToken {
  accessToken: string
  expiresAt: Date
}

/** Tokens to store: a refresh token where the legacy flow gave one, else none (client credentials). */
export interface NewTokens {
  accessToken: string
  refreshToken: string | null
  expiresAt: Date
}

/** What the vault is made of; each of its parts takes what it uses. */
export interface TokenVaultOptions {
  sql: Sql; cipher: TokenCipher; wix: TokenMinter; now: () => Date; log?: { warn(o: object, m: string): void }
  /** Told when refusals turn out to be of the app's own credentials (for the credentials' health). */
  onAppRefused?: (status: number | undefined) => void
}
