import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** 256 random bits, URL-safe: the OAuth `state` sent through Wix and back. */
export const newOAuthState = () => randomBytes(32).toString('base64url')

/** What the server keeps of a state: its hash, so a database read cannot replay it. */
export const hashOAuthState = (state: string) => createHash('sha256').update(state).digest('hex')

/** Constant-time equality for strings of any length (hashing first equalises the lengths). */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest()
  const hb = createHash('sha256').update(b).digest()
  return timingSafeEqual(ha, hb)
}

/** The shape of a state we issue; anything else is rejected before a database read. */
export const OAUTH_STATE_PATTERN = /^[A-Za-z0-9_-]{43}$/
