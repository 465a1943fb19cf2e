import { randomBytes, randomUUID } from 'node:crypto'
import type { FakeWix } from './model-types.ts'
import type { Sites } from './sites.ts'
import { tokenFormat } from './token-format.ts'

/** Client-credentials tokens live 4 hours, as Wix's `expires_in: 14400` says. */
export const APP_TOKEN_TTL_SECONDS = 14_400

export const random = (prefix = '') => `${prefix}${randomBytes(24).toString('base64url')}`

type Grants = Pick<FakeWix, 'issuedCodes' | 'refreshTokens' | 'issueCode' | 'mintTokens' | 'mintAppToken'
  | 'instanceOfToken' | 'isValidAccessToken' | 'verifyRefreshToken' | 'revokeRefreshToken'>

/** The codes and tokens the fake issues, and which of them it still honours. */
export function createGrants(o: {
  appSecret: string; now: () => number; codeTtlMs: number; accessTokenTtlMs: number; sites: Sites
}): Grants {
  const { now, sites } = o
  const tokens = tokenFormat(o.appSecret)
  const revoked = new Set<string>()
  const issuedCodes: FakeWix['issuedCodes'] = new Map()
  const refreshTokens: FakeWix['refreshTokens'] = new Map()
  const isValidAccessToken = (token: string) => {
    const fields = tokens.openAccess(token)
    if (fields === undefined || now() >= fields.expiresAtMs) return false
    // Removing the app kills the tokens issued before.
    return fields.issuedAtMs > sites.removedAt(fields.instanceId)
  }
  return {
    issuedCodes,
    refreshTokens,
    issueCode(instanceId = randomUUID()) {
      sites.markInstalled(instanceId)
      const code = random('OAUTH2.code.')
      issuedCodes.set(code, { instanceId, expiresAt: now() + o.codeTtlMs, used: false })
      return { code, instanceId }
    },
    mintTokens(instanceId, refreshToken) {
      const access_token = tokens.access(instanceId, now(), now() + o.accessTokenTtlMs)
      // Wix refresh tokens do not rotate: a refresh answers with the one it was given.
      const refresh_token = refreshToken ?? tokens.refresh(instanceId)
      if (!refreshToken) refreshTokens.set(refresh_token, { instanceId, revoked: false })
      return { access_token, refresh_token }
    },
    mintAppToken: (instanceId) => tokens.access(instanceId, now(), now() + APP_TOKEN_TTL_SECONDS * 1000),
    instanceOfToken: (token) => (isValidAccessToken(token) ? tokens.openAccess(token)!.instanceId : undefined),
    isValidAccessToken,
    verifyRefreshToken(token) {
      const instanceId = tokens.openRefresh(token)
      if (instanceId === undefined || revoked.has(token) || !sites.isInstalled(instanceId)) return undefined
      if (!refreshTokens.has(token)) refreshTokens.set(token, { instanceId, revoked: false })
      return instanceId
    },
    revokeRefreshToken(token) {
      revoked.add(token)
      const t = refreshTokens.get(token)
      if (t) t.revoked = true
    },
  }
}
