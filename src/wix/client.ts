import { Agent, request } from 'undici'
import { z } from 'zod'
import { WIX_GUID } from './ids.ts'

export interface WixTokens { accessToken: string; refreshToken: string }
/** A client-credentials token: no refresh token, an expiry Wix states. */
export interface WixAppToken { accessToken: string; expiresInMs: number }

type Endpoint = 'oauth/access' | 'oauth2/token' | 'oauth2/token-info' | 'apps/v1/instance' | 'bi-event'
type Grant = 'authorization_code' | 'refresh_token' | 'client_credentials'
/** The endpoints that authenticate the app itself by its client id and secret. */
const TOKEN_ENDPOINTS: Endpoint[] = ['oauth/access', 'oauth2/token']

export interface WixCallInfo {
  endpoint: Endpoint
  grant?: Grant
  status: number | null
  durationMs: number
  outcome: 'ok' | 'retryable' | 'final'
  /** How it failed, when it did. */
  code?: WixErrorCode
  wixRequestId?: string
}

export interface WixClientOptions {
  /** e.g. https://www.wixapis.com, or the fake's base URL */
  apiUrl: string
  appId: string
  appSecret: string
  /** Whole call: connect, headers and body. Default 10 s. */
  timeoutMs?: number
  log?: { warn(obj: object, msg: string): void }
  onCall?: (info: WixCallInfo) => void
}

/**
 * `WIX_CLIENT_REJECTED`: Wix refused the app's own client id or secret (a wrong or rotated
 * WIX_APP_SECRET), not the code or token the call carried. A configuration fault: it must never
 * be taken for a verdict on an installation.
 */
export type WixErrorCode =
  | 'WIX_REJECTED' | 'WIX_CLIENT_REJECTED' | 'WIX_UNAVAILABLE' | 'WIX_RATE_LIMITED' | 'WIX_NETWORK' | 'WIX_TIMEOUT'
  | 'WIX_BAD_RESPONSE'

/** A failed Wix call. Built only from safe parts, so it can be stored, logged and shown as is. */
export class WixApiError extends Error {
  readonly code: WixErrorCode
  readonly endpoint: Endpoint
  readonly status?: number
  readonly wixRequestId?: string
  readonly retryable: boolean
  readonly retryAfterMs?: number

  constructor(f: {
    code: WixErrorCode; message: string; endpoint: Endpoint; retryable: boolean
    status?: number; wixRequestId?: string; retryAfterMs?: number
  }) {
    super(f.message)
    this.name = 'WixApiError'
    this.code = f.code
    this.endpoint = f.endpoint
    this.retryable = f.retryable
    if (f.status !== undefined) this.status = f.status
    if (f.wixRequestId !== undefined) this.wixRequestId = f.wixRequestId
    if (f.retryAfterMs !== undefined) this.retryAfterMs = f.retryAfterMs
  }

  toJSON() {
    const { code, message, endpoint, status, wixRequestId, retryable, retryAfterMs } = this
    return { code, message, endpoint, status, wixRequestId, retryable, retryAfterMs }
  }
}

const tokenResponse = z.object({ access_token: z.string().min(1), refresh_token: z.string().min(1) })
const appTokenResponse = z.object({ access_token: z.string().min(1), expires_in: z.number().positive() })
const instanceResponse = z.object({
  instance: z.object({ instanceId: z.string().regex(WIX_GUID) }),
})
/**
 * `active`, and for a live token whose instance and app it is. Wix's own example answers
 * `"active": "true"`, a string: both spellings are read.
 */
const tokenInfoResponse = z.object({
  active: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]),
  instanceId: z.string().optional(),
  clientId: z.string().optional(),
})
export type WixTokenInfo = z.infer<typeof tokenInfoResponse>

const WHAT: Record<string, string> = {
  authorization_code: 'the code exchange',
  refresh_token: 'the token refresh',
  client_credentials: 'the client-credentials token',
  'apps/v1/instance': 'the instance lookup',
  'oauth2/token-info': 'the token-info lookup',
  'bi-event': 'the bi-event',
}

export function createWixClient(opts: WixClientOptions) {
  const apiUrl = opts.apiUrl.replace(/\/+$/, '')
  const timeoutMs = opts.timeoutMs ?? 10_000
  // One keep-alive pool per client: token calls come in bursts after deploys and outbox wake-ups.
  const agent = new Agent({ connect: { timeout: timeoutMs }, keepAliveTimeout: 30_000 })

  interface Call {
    endpoint: Endpoint
    grant?: Grant
    method?: 'GET' | 'POST'
    path: string
    headers?: Record<string, string>
    body?: unknown
    secrets: string[]
    signal?: AbortSignal
  }

  /**
   * Sends one call; returns the 2xx body as `expect` parses it (undefined without `expect`).
   * An answer `expect` cannot parse is WIX_BAD_RESPONSE, and its body is never echoed.
   */
  async function call<T>(c: Call, expect?: { schema: z.ZodType<T>; missing: string }): Promise<T> {
    const what = WHAT[c.grant ?? c.endpoint]!
    const started = performance.now()
    let status: number | null = null
    let wixRequestId: string | undefined

    const finish = (outcome: WixCallInfo['outcome'], code?: WixErrorCode) => opts.onCall?.({
      endpoint: c.endpoint, ...(c.grant && { grant: c.grant }), status,
      durationMs: performance.now() - started, outcome, ...(code && { code }), ...(wixRequestId && { wixRequestId }),
    })
    const fail = (e: ConstructorParameters<typeof WixApiError>[0]): never => {
      const err = new WixApiError({ ...e, message: scrub(e.message, c.secrets) })
      finish(err.retryable ? 'retryable' : 'final', err.code)
      opts.log?.warn({ endpoint: c.endpoint, status, wixRequestId, code: err.code }, err.message)
      throw err
    }

    // One controller ends the call, on the timeout or on the caller's signal. (AbortSignal.any
    // would do the same at tens of µs a call on Node 20, plus the weak references it leaves the GC.)
    const abort = new AbortController()
    let expired = false
    const timer = setTimeout(() => { expired = true; abort.abort() }, timeoutMs)
    const onCallerAbort = () => abort.abort()
    if (c.signal?.aborted) abort.abort()
    else c.signal?.addEventListener('abort', onCallerAbort, { once: true })
    let text: string
    try {
      const res = await request(`${apiUrl}${c.path}`, {
        method: c.method ?? 'POST',
        dispatcher: agent,
        headers: { ...(c.body !== undefined && { 'content-type': 'application/json' }), accept: 'application/json', ...c.headers },
        body: c.body === undefined ? undefined : JSON.stringify(c.body),
        signal: abort.signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      })
      status = res.statusCode
      wixRequestId = firstHeader(res.headers['x-wix-request-id'])
      // Read every body, even unwanted ones, so the keep-alive socket goes back to the pool.
      text = await res.body.text()
      if (status < 200 || status >= 300) {
        const said = wixMessage(text, c.secrets)
        const e = httpError(c.endpoint, what, status, wixRequestId, said, firstHeader(res.headers['retry-after']))
        // A refused app secret is retried (it can be fixed), except with a code: a code Wix
        // answered with a 4xx is never sent again, whatever the reason.
        return fail(TOKEN_ENDPOINTS.includes(c.endpoint) && isClientRejection(status, text) ? {
          ...e, code: 'WIX_CLIENT_REJECTED', retryable: c.grant !== 'authorization_code',
          message: `Wix refused the app's client credentials for ${what} (${status}): check WIX_APP_ID and WIX_APP_SECRET`,
        } : e)
      }
    } catch (error) {
      if (error instanceof WixApiError) throw error
      // The caller's own abort (shutdown, say) is not Wix's slowness: it reads as a network error.
      const callerAborted = c.signal?.aborted && !expired
      const timedOut = !callerAborted && (expired || isTimeoutError(error))
      const reason = callerAborted ? 'the call was aborted by the caller' : errorName(error)
      return fail({
        code: timedOut ? 'WIX_TIMEOUT' : 'WIX_NETWORK',
        endpoint: c.endpoint, retryable: true, status: status ?? undefined, wixRequestId,
        message: timedOut
          ? `Wix did not answer ${what} within ${timeoutMs} ms`
          : `Could not reach Wix for ${what}: ${reason}`,
      })
    } finally {
      clearTimeout(timer)
      c.signal?.removeEventListener('abort', onCallerAbort)
    }

    if (!expect) { finish('ok'); return undefined as T }
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch { parsed = undefined }
    const answer = expect.schema.safeParse(parsed)
    if (!answer.success) {
      // Never echo the body: a half-valid answer may still carry a token.
      return fail({
        code: 'WIX_BAD_RESPONSE', endpoint: c.endpoint, retryable: false, status: status ?? undefined, wixRequestId,
        message: `Wix answered ${what} with ${status} but ${expect.missing}`,
      })
    }
    finish('ok')
    return answer.data
  }

  async function tokenCall(grant: Grant, field: 'code' | 'refresh_token', value: string, signal?: AbortSignal) {
    const data = await call({
      endpoint: 'oauth/access', grant, path: '/oauth/access', signal,
      body: { grant_type: grant, client_id: opts.appId, client_secret: opts.appSecret, [field]: value },
      secrets: [opts.appSecret, value],
    }, { schema: tokenResponse, missing: 'no access_token and refresh_token' })
    return { accessToken: data.access_token, refreshToken: data.refresh_token }
  }

  function tokenInfo(token: string, o: { signal?: AbortSignal } = {}): Promise<WixTokenInfo> {
    return call({
      endpoint: 'oauth2/token-info', path: '/oauth2/token-info', signal: o.signal,
      body: { token }, secrets: [token, opts.appSecret],
    }, { schema: tokenInfoResponse, missing: 'no active flag' })
  }

  return {
    exchangeCode(code: string, o: { signal?: AbortSignal } = {}): Promise<WixTokens> {
      return tokenCall('authorization_code', 'code', code, o.signal)
    },

    refreshAccessToken(refreshToken: string, o: { signal?: AbortSignal } = {}): Promise<WixTokens> {
      return tokenCall('refresh_token', 'refresh_token', refreshToken, o.signal)
    },

    /** New Wix apps' only grant, and the fallback when a legacy refresh token stops working. */
    async clientCredentials(instanceId: string, o: { signal?: AbortSignal } = {}): Promise<WixAppToken> {
      const data = await call({
        endpoint: 'oauth2/token', grant: 'client_credentials', path: '/oauth2/token', signal: o.signal,
        body: { grant_type: 'client_credentials', client_id: opts.appId, client_secret: opts.appSecret, instance_id: instanceId },
        secrets: [opts.appSecret],
      }, { schema: appTokenResponse, missing: 'no access_token and expires_in' })
      return { accessToken: data.access_token, expiresInMs: data.expires_in * 1000 }
    },

    /**
     * What Wix says of a token (access or refresh): whether it is still active, and whose. Needs no
     * permission and no app secret, which makes it evidence independent of the app's credentials.
     */
    tokenInfo,

    /**
     * Which instance an access token belongs to: Wix's word, unlike a browser's query. Token-info
     * first: it needs no permission, while `/apps/v1/instance` needs "Manage Your App", which an app
     * may not have (the lookup would fail after the code is spent). The instance endpoint is the
     * fallback for a token-info that cannot say; a retryable token-info failure outranks its refusal,
     * so the whole lookup is tried again rather than the install failing.
     */
    async instanceOf(accessToken: string, o: { signal?: AbortSignal } = {}): Promise<string> {
      let first: unknown
      try {
        const info = await tokenInfo(accessToken, o)
        if (info.active && WIX_GUID.test(info.instanceId ?? '') && (info.clientId === undefined || info.clientId === opts.appId)) {
          return info.instanceId!.toLowerCase()
        }
        first = new WixApiError({
          code: 'WIX_BAD_RESPONSE', endpoint: 'oauth2/token-info', retryable: false,
          message: 'Wix\'s token-info did not name an instance of this app for the token',
        })
      } catch (err) {
        first = err
      }
      try {
        const data = await call({
          endpoint: 'apps/v1/instance', method: 'GET', path: '/apps/v1/instance', signal: o.signal,
          headers: { authorization: accessToken },
          secrets: [accessToken, opts.appSecret],
        }, { schema: instanceResponse, missing: 'no instance.instanceId' })
        return data.instance.instanceId.toLowerCase()
      } catch (err) {
        throw (first as { retryable?: boolean }).retryable ? first : err
      }
    },

    async sendBiEvent(accessToken: string, o: { signal?: AbortSignal; eventName?: string } = {}): Promise<void> {
      await call({
        endpoint: 'bi-event', path: '/apps/v1/bi-event', signal: o.signal,
        // Wix wants the token raw here; a `Bearer ` prefix is refused.
        headers: { authorization: accessToken },
        body: { eventName: o.eventName ?? 'APP_FINISHED_CONFIGURATION' },
        secrets: [accessToken, opts.appSecret],
      })
    },

    close: () => agent.close(),
  }
}

export type WixClient = ReturnType<typeof createWixClient>

function httpError(
  endpoint: Endpoint, what: string, status: number, wixRequestId: string | undefined, said?: string, retryAfter?: string,
): ConstructorParameters<typeof WixApiError>[0] {
  const suffix = said ? `: ${said}` : ''
  const base = { endpoint, status, wixRequestId }
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(retryAfter)
    return { ...base, code: 'WIX_RATE_LIMITED', retryable: true, retryAfterMs, message: `Wix rate-limited ${what} (429)${suffix}` }
  }
  if (status >= 500) return { ...base, code: 'WIX_UNAVAILABLE', retryable: true, message: `Wix failed ${what} (${status})${suffix}` }
  if (status >= 400) return { ...base, code: 'WIX_REJECTED', retryable: false, message: `Wix refused ${what} (${status})${suffix}` }
  return { ...base, code: 'WIX_BAD_RESPONSE', retryable: false, message: `Wix answered ${what} with an unexpected ${status}` }
}

/**
 * Whether a token endpoint refused the app itself rather than the grant it carried: OAuth's 401
 * (RFC 6749 §5.2, invalid_client), or an `invalid_client`/`unauthorized_client` anywhere in the
 * answer, whatever its shape. A refused code or refresh token is a 400 naming the grant.
 */
function isClientRejection(status: number, text: string): boolean {
  return status === 401 || /\b(invalid_client|unauthorized_client)\b/i.test(text)
}

/** Wix errors have no fixed shape; only a top-level string `message` is taken, never `details`. */
function wixMessage(text: string, secrets: string[]): string | undefined {
  let m: unknown
  try { m = (JSON.parse(text) as { message?: unknown } | null)?.message } catch { return undefined }
  if (typeof m !== 'string' || !m.trim()) return undefined
  // Truncate only after scrubbing, so a cut can never leave part of a secret behind.
  const safe = scrub(m.trim(), secrets)
  return safe.length > 200 ? `${safe.slice(0, 200)}…` : safe
}

/** Wix may echo what it was sent; replace every secret of this call before the text goes anywhere. */
function scrub(message: string, secrets: string[]): string {
  let out = message
  for (const s of secrets) {
    if (!s) continue
    for (const form of new Set([s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)])) {
      out = out.split(form).join('[redacted]')
    }
  }
  return out
}

export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

function isTimeoutError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT'
}

/** The error's code (ECONNREFUSED, UND_ERR_SOCKET…), not its message: it names the cause without payload. */
function errorName(error: unknown): string {
  const e = error as { code?: unknown; name?: unknown } | null
  return typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'unknown error'
}
