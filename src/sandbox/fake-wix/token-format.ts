import { createHmac, randomBytes } from 'node:crypto'
import { safeEqual } from '../../crypto/oauth-state.ts'

/*
 * Tokens carry what they grant, signed with the app secret, so a sandbox restarted on the same
 * DATA_DIR (same secret) still honours the tokens its previous run issued, as Wix would:
 *   refresh: OAUTH2.R.<instanceId>.<nonce>.<mac>
 *   access:  OAUTH2.A.<instanceId>.<issuedAtMs>.<expiresAtMs>.<nonce>.<mac>
 */
const REFRESH_PREFIX = 'OAUTH2.R.'
const ACCESS_PREFIX = 'OAUTH2.A.'

function tokenSigner(appSecret: string) {
  const key = createHmac('sha256', appSecret).update('fake-wix token signing key').digest()
  const mac = (payload: string) => createHmac('sha256', key).update(payload).digest('base64url')
  return {
    sign: (prefix: string, fields: string[]) => {
      const payload = `${prefix}${[...fields, randomBytes(12).toString('base64url')].join('.')}`
      return `${payload}.${mac(payload)}`
    },
    /** The signed fields (nonce dropped), or undefined for a forged or malformed token. */
    open(prefix: string, token: string, count: number): string[] | undefined {
      if (!token.startsWith(prefix)) return undefined
      const dot = token.lastIndexOf('.')
      const payload = token.slice(0, dot)
      if (!safeEqual(token.slice(dot + 1), mac(payload))) return undefined
      const parts = payload.slice(prefix.length).split('.')
      parts.pop()
      // The instanceId comes first and may itself hold dots: the other fields are counted from the end.
      if (parts.length < count) return undefined
      return [parts.slice(0, parts.length - count + 1).join('.'), ...parts.slice(parts.length - count + 1)]
    },
  }
}

export interface AccessTokenFields { instanceId: string; issuedAtMs: number; expiresAtMs: number }

/** Writes and reads the fake's two kinds of token, signed with the app secret. */
export function tokenFormat(appSecret: string) {
  const signer = tokenSigner(appSecret)
  return {
    access: (instanceId: string, issuedAtMs: number, expiresAtMs: number) =>
      signer.sign(ACCESS_PREFIX, [instanceId, String(issuedAtMs), String(expiresAtMs)]),
    refresh: (instanceId: string) => signer.sign(REFRESH_PREFIX, [instanceId]),
    /** What an access token says, expired or not; undefined for a forged or malformed one. */
    openAccess(token: string): AccessTokenFields | undefined {
      const fields = signer.open(ACCESS_PREFIX, token, 3)
      if (fields === undefined) return undefined
      return { instanceId: fields[0]!, issuedAtMs: Number(fields[1]), expiresAtMs: Number(fields[2]) }
    },
    /** The instance a refresh token was signed for; undefined for a forged or malformed one. */
    openRefresh: (token: string) => signer.open(REFRESH_PREFIX, token, 1)?.[0],
  }
}
