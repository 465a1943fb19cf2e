import type { CookieSerializeOptions } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../../config.ts'

/**
 * One state cookie per begun install, named after its installation, so installs begun in several
 * tabs of one browser each keep theirs; the flow cookie likewise, once the state is spent.
 */
const STATE_COOKIE = 'wix_install_state_'
const FLOW_COOKIE = 'wix_install_flow_'

/** The flow's signed cookies: the state cookie until the callback, the flow cookie after it. */
export function wixCookies(config: Config) {
  // `__Host-` binds a cookie to this exact origin (Secure, Path=/, no Domain): a sibling subdomain
  // cannot plant or overwrite it. Browsers honour it only over https.
  const prefix = config.secureCookies ? '__Host-' : ''
  const attributes = {
    path: config.secureCookies ? '/' : '/wix',
    httpOnly: true,
    sameSite: config.cookieSameSite,
    secure: config.secureCookies,
  } satisfies CookieSerializeOptions
  const stateCookie = (installationId: string) => `${prefix}${STATE_COOKIE}${installationId}`
  const flowCookie = (installationId: string) => `${prefix}${FLOW_COOKIE}${installationId}`
  const setCookie = (reply: FastifyReply, name: string, value: string, maxAgeSeconds: number) =>
    reply.setCookie(name, value, { ...attributes, signed: true, maxAge: maxAgeSeconds })
  // Cleared with the attributes it was set with: a browser in Wix's iframe drops a Set-Cookie
  // that lacks `SameSite=None; Secure`, and would keep the old cookie.
  const clearCookie = (reply: FastifyReply, name: string) => reply.clearCookie(name, attributes)

  const readCookie = (request: FastifyRequest, name: string) => {
    const raw = request.cookies[name]
    if (raw === undefined) return undefined
    const unsigned = request.unsignCookie(raw)
    // A tampered cookie is present but proves nothing: it can only mismatch.
    return unsigned.valid && unsigned.value !== null ? unsigned.value : ''
  }

  /** The state is spent: from here this browser follows its installation by the flow cookie. */
  function followInstallation(reply: FastifyReply, installationId: string) {
    clearCookie(reply, stateCookie(installationId))
    setCookie(reply, flowCookie(installationId), installationId, 15 * 60)
  }

  /** The names of the state (or flow) cookies this request carries, in the order the browser sent them. */
  const namesOf = (request: FastifyRequest, kind: 'state' | 'flow') =>
    Object.keys(request.cookies).filter((name) => name.startsWith(`${prefix}${kind === 'state' ? STATE_COOKIE : FLOW_COOKIE}`))

  return { stateCookie, flowCookie, setCookie, clearCookie, readCookie, followInstallation, namesOf }
}

export type WixCookies = ReturnType<typeof wixCookies>
