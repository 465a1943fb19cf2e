import { createHmac, randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { z } from 'zod'
import { safeEqual } from '../crypto/oauth-state.ts'
import { escapeHtml } from '../routes/html.ts'
import { MAX_HANG_MS } from './fake-wix/failure-switches.ts'
import { APP_TOKEN_TTL_SECONDS, random } from './fake-wix/grants.ts'
import { createFakeWix } from './fake-wix/model.ts'
import type { FakeEndpoint, FakeWix, FakeWixFailure, FakeWixOptions, RecordedRequest } from './fake-wix/model-types.ts'

/**
 * A fake of the Wix side of an app's life (installer pages, /oauth/access, client credentials on
 * /oauth2/token, the instance lookup, the bi-event, and signed AppInstalled/AppRemoved webhooks),
 * faithful to docs/design.md and docs/wix.md, with switches to make it fail. Serves sandbox mode and the tests.
 */
export type {
  AppInstalledTiming, FakeWix, FakeWixFailure, FakeWixOptions, IssuedCode, RecordedRequest, SentWebhook,
} from './fake-wix/model-types.ts'
export { APP_TOKEN_TTL_SECONDS } from './fake-wix/grants.ts'
export { createFakeWix } from './fake-wix/model.ts'

const MAX_RECORDED = 1_000
const REDACTED = '[redacted]'
const secretBody = ['client_secret', 'code', 'refresh_token']

// ---- inputs ---------------------------------------------------------------------------------

const httpUrl = z.string().refine((s) => {
  try { return ['http:', 'https:'].includes(new URL(s).protocol) } catch { return false }
}, 'must be an absolute http(s) URL')

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

const installQuery = z.object({
  appId: z.string().min(1),
  redirectUrl: httpUrl,
  state: z.string().min(1),
  token: z.string().min(1).optional(),
  instanceId: z.string().regex(GUID).optional(),
})

const clientCredentialsBody = z.object({
  grant_type: z.literal('client_credentials'),
  client_id: z.string(),
  client_secret: z.string(),
  instance_id: z.string().regex(GUID),
})

const accessBody = z.discriminatedUnion('grant_type', [
  z.object({ grant_type: z.literal('authorization_code'), client_id: z.string(), client_secret: z.string(), code: z.string().min(1) }),
  z.object({ grant_type: z.literal('refresh_token'), client_id: z.string(), client_secret: z.string(), refresh_token: z.string().min(1) }),
])

const failureBody = z.object({
  endpoint: z.enum(['oauth/access', 'oauth2/token', 'oauth2/token-info', 'apps/v1/instance', 'bi-event', 'any']),
  grant: z.enum(['authorization_code', 'refresh_token', 'client_credentials']).optional(),
  status: z.int().min(400).max(599).optional(),
  retryAfterSeconds: z.int().min(0).optional(),
  delayMs: z.int().min(0).max(MAX_HANG_MS).optional(),
  hang: z.boolean().optional(),
  loseAnswer: z.enum(['hold', 'cut']).optional(),
  times: z.int().min(1).optional(),
  message: z.string().max(1000).optional(),
})

/** The panel's one-click failures; each plays the failure path its label names. */
export const SANDBOX_SWITCHES: Record<string, { label: string; failure: FakeWixFailure }> = {
  'exchange-503': { label: 'Next code exchange answers 503 (retried, then the install completes)', failure: { endpoint: 'oauth/access', grant: 'authorization_code', status: 503 } },
  'exchange-429': { label: 'Next code exchange answers 429 with Retry-After: 1 (retried)', failure: { endpoint: 'oauth/access', grant: 'authorization_code', status: 429, retryAfterSeconds: 1 } },
  'exchange-400': { label: 'Next code exchange answers 400 (refused: never retried, the install fails)', failure: { endpoint: 'oauth/access', grant: 'authorization_code', status: 400, message: 'Injected failure: the authorization code was refused' } },
  'exchange-slow': { label: 'Next code exchange answers after 15 s (the browser sees the waiting page)', failure: { endpoint: 'oauth/access', grant: 'authorization_code', delayMs: 15_000 } },
  'exchange-lost': { label: "Next code exchange is done at Wix but its answer is lost (the code is spent; the waiting browser goes back to Wix's installer for a new one)", failure: { endpoint: 'oauth/access', grant: 'authorization_code', loseAnswer: 'cut' } },
  'bi-event-500': { label: 'Next bi-event answers 500 (retried, then the install finishes)', failure: { endpoint: 'bi-event', status: 500 } },
}

const actionBody = z.object({
  csrf: z.string(),
  action: z.enum([...Object.keys(SANDBOX_SWITCHES), 'release', 'reset', 'install-new-app', 'uninstall']),
  instanceId: z.string().regex(GUID).optional(),
})

// ---- answers --------------------------------------------------------------------------------

const page = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
  `<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`

const sendHtml = (reply: FastifyReply, status: number, html: string) =>
  reply.code(status).type('text/html; charset=utf-8').send(html)

const issuesOf = (e: z.ZodError) => e.issues.map((i) => ({ path: i.path.join('.'), message: i.message }))

function withParams(url: string, params: Record<string, string>): string {
  const u = new URL(url)
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v)
  return u.toString()
}

// ---- the plugin -----------------------------------------------------------------------------

export async function fakeWixPlugin(fastify: FastifyInstance, opts: FakeWixOptions & { wix?: FakeWix }): Promise<void> {
  const wix = opts.wix ?? createFakeWix(opts)
  const records = new WeakMap<FastifyRequest, RecordedRequest>()
  /** Calls whose answer is to be lost once their work is done (`loseAnswer`). */
  const losing = new WeakMap<FastifyRequest, 'hold' | 'cut'>()
  /** Codes whose exchange is followed by AppInstalled (`appInstalledOnApprove: 'after'`), by instance. */
  const afterExchange = new Map<string, string>()

  // Held requests must not keep a closing server open.
  fastify.addHook('preClose', async () => wix.releaseAll())
  fastify.addHook('onRequest', async (_req, reply) => { reply.header('x-wix-request-id', randomUUID()) })
  // onSend, not 'finish': a request whose caller gave up still gets its status recorded.
  fastify.addHook('onSend', async (req, reply) => {
    const record = records.get(req)
    if (record) record.status = reply.statusCode
  })
  fastify.setErrorHandler((error: { statusCode?: number; message: string }, _req, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
    return reply.code(status).send({ message: status < 500 ? error.message : 'Internal error', details: {} })
  })

  // -- the installer, seen by the site owner's browser --

  const installer = (req: FastifyRequest, reply: FastifyReply) => {
    const q = installQuery.safeParse(req.query)
    if (!q.success) {
      const list = issuesOf(q.error).map((i) => `<li>${escapeHtml(`${i.path}: ${i.message}`)}</li>`).join('')
      sendHtml(reply, 400, page('Invalid installation link', `<ul>${list}</ul>`))
      return undefined
    }
    if (q.data.appId !== wix.appId) {
      sendHtml(reply, 400, page('Unknown app', `<p>No app with id ${escapeHtml(q.data.appId)} exists.</p>`))
      return undefined
    }
    // Wix sends codes only to the Redirect URL registered in the app dashboard.
    if (wix.redirectUrl !== undefined && q.data.redirectUrl !== wix.redirectUrl) {
      sendHtml(reply, 400, page('Redirect URL not registered', '<p>The redirectUrl is not the one registered for this app.</p>'))
      return undefined
    }
    return q.data
  }

  fastify.get('/installer/install', async (req, reply) => {
    const q = installer(req, reply)
    if (!q) return reply
    const hidden = Object.entries(q).filter(([, v]) => v !== undefined)
      .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(String(v))}">`).join('')
    // Relative actions, so the page works under any mount prefix.
    return sendHtml(reply, 200, page('Install app on your site (fake Wix)',
      `<p>The app <code>${escapeHtml(q.appId)}</code> asks for access to your site.</p>` +
      `<form method="get" action="approve">${hidden}<button type="submit" id="approve">Approve</button></form>` +
      `<form method="get" action="cancel">${hidden}<button type="submit" id="cancel">Cancel</button></form>`))
  })

  fastify.get('/installer/approve', async (req, reply) => {
    const q = installer(req, reply)
    if (!q) return reply
    const forced = opts.allowForcedInstanceId ? q.instanceId?.toLowerCase() : undefined
    const { code, instanceId } = wix.issueCode(wix.instanceIdFor(q.token, forced))
    if (wix.appInstalledOnApprove === 'before') await wix.sendWebhook('AppInstalled', instanceId, { appId: wix.appId, originInstanceId: '' })
    if (wix.appInstalledOnApprove === 'after') afterExchange.set(code, instanceId)
    return reply.redirect(withParams(q.redirectUrl, { code, state: q.state, instanceId }), 302)
  })

  fastify.get('/installer/cancel', async (req, reply) => {
    const q = installer(req, reply)
    if (!q) return reply
    return reply.redirect(withParams(q.redirectUrl, {
      error: 'access_denied', error_description: 'The site owner cancelled the installation', state: q.state,
    }), 302)
  })

  fastify.get('/installer/close-window', async (req, reply) => {
    const token = (req.query as { access_token?: unknown }).access_token
    const note = typeof token !== 'string' ? 'No access token was given.'
      : wix.isValidAccessToken(token) ? 'The access token is valid.' : 'The access token is not valid.'
    return sendHtml(reply, 200, page('Installation complete',
      `<p>Installation complete, you can close this window.</p><p id="token-status">${escapeHtml(note)}</p>`))
  })

  // -- the API, seen by our server --

  /** Records the call, plays any queued failure; returns false when the failure answered. */
  async function intercept(req: FastifyRequest, reply: FastifyReply, endpoint: FakeEndpoint) {
    const record: RecordedRequest = {
      endpoint, method: req.method, headers: { ...req.headers }, body: recordable(req.body), status: 0, at: wix.now(),
    }
    wix.requests.push(record)
    if (wix.requests.length > MAX_RECORDED) wix.requests.shift()
    records.set(req, record)

    const grant = (req.body as { grant_type?: unknown } | null)?.grant_type
    const f = wix.takeFailure(endpoint, typeof grant === 'string' ? grant : undefined)
    if (!f) return true
    if (f.loseAnswer) {
      losing.set(req, f.loseAnswer)
      return true
    }
    if (f.hang) {
      await wix.hold(Infinity)
      wixError(reply, 504, 'Fake Wix released a hanging request')
      return false
    }
    if (f.delayMs) await wix.hold(f.delayMs)
    if (!f.status) return true
    if (f.status === 429) reply.header('retry-after', String(f.retryAfterSeconds ?? 1))
    else if (f.retryAfterSeconds !== undefined) reply.header('retry-after', String(f.retryAfterSeconds))
    wixError(reply, f.status, f.message ?? `Injected failure ${f.status}`, { injected: true })
    return false
  }

  const clientAccepted = (b: { client_id: string; client_secret: string }) =>
    !wix.secretRotated && safeEqual(b.client_id, wix.appId) && safeEqual(b.client_secret, wix.appSecret)
  const refuseClient = (reply: FastifyReply) => wix.wrongSecretStatus === 401
    ? wixError(reply, 401, 'Invalid client credentials', { reason: 'INVALID_CLIENT' })
    : wixError(reply, wix.wrongSecretStatus, wix.wrongSecretStatus === 403 ? 'Forbidden' : 'Bad request')

  fastify.post('/oauth/access', async (req, reply) => {
    if (!(await intercept(req, reply, 'oauth/access'))) return reply
    const b = accessBody.safeParse(req.body)
    if (!b.success) return wixError(reply, 400, 'Invalid request body', { issues: issuesOf(b.error) })
    if (!clientAccepted(b.data)) return refuseClient(reply)
    if (b.data.grant_type === 'refresh_token') {
      const instanceId = wix.verifyRefreshToken(b.data.refresh_token)
      if (!instanceId) return wixError(reply, wix.instanceRefusalStatus, 'Invalid refresh token', { reason: 'INVALID_REFRESH_TOKEN' })
      return wix.mintTokens(instanceId, b.data.refresh_token)
    }
    const c = wix.issuedCodes.get(b.data.code)
    if (!c) return wixError(reply, 400, 'Invalid authorization code', { reason: 'INVALID_CODE' })
    if (c.used) return wixError(reply, 400, 'Authorization code was already used', { reason: 'CODE_USED' })
    if (wix.now() >= c.expiresAt) return wixError(reply, 400, 'Authorization code expired', { reason: 'CODE_EXPIRED' })
    c.used = true
    const tokens = wix.mintTokens(c.instanceId)
    const installed = afterExchange.get(b.data.code)
    if (installed) {
      afterExchange.delete(b.data.code)
      // Once this answer is on its way: the browser's flow is past the Redirect URL.
      reply.raw.once('finish', () => void wix.sendWebhook('AppInstalled', installed, { appId: wix.appId, originInstanceId: '' }))
    }
    const lost = losing.get(req)
    if (lost === 'cut') {
      req.raw.socket.destroy()
      return reply
    }
    if (lost === 'hold') {
      await wix.hold(Infinity)
      return wixError(reply, 504, 'Fake Wix released a call whose answer it had lost')
    }
    return tokens
  })

  fastify.post('/oauth2/token', async (req, reply) => {
    if (!(await intercept(req, reply, 'oauth2/token'))) return reply
    const b = clientCredentialsBody.safeParse(req.body)
    if (!b.success) return wixError(reply, 400, 'Invalid request body', { issues: issuesOf(b.error) })
    if (!clientAccepted(b.data)) return refuseClient(reply)
    const instanceId = b.data.instance_id.toLowerCase()
    if (!wix.isInstalled(instanceId)) {
      return wixError(reply, wix.instanceRefusalStatus, 'The app is not installed on this instance', { reason: 'APP_NOT_INSTALLED' })
    }
    return { access_token: wix.mintAppToken(instanceId), token_type: 'Bearer', expires_in: APP_TOKEN_TTL_SECONDS }
  })

  /** The instance a raw access token (no `Bearer`, as on every Wix API call) belongs to. */
  const tokenInstance = (token: unknown) => {
    if (typeof token !== 'string' || /^bearer /i.test(token)) return undefined
    return wix.instanceOfToken(token)
  }

  fastify.get('/apps/v1/instance', async (req, reply) => {
    if (!(await intercept(req, reply, 'apps/v1/instance'))) return reply
    const instanceId = tokenInstance(req.headers.authorization)
    if (!instanceId) return wixError(reply, 401, 'Invalid or expired access token', { reason: 'UNAUTHENTICATED' })
    if (!wix.manageYourApp) return wixError(reply, 403, 'Missing permission: Manage Your App', { reason: 'PERMISSION_DENIED' })
    return { instance: { instanceId, appName: 'Sandbox app', isFree: true }, site: { siteDisplayName: 'Sandbox site', locale: 'en' } }
  })

  // Access and refresh tokens alike (the SDK's getTokenInfo sends either); no permission needed.
  fastify.post('/oauth2/token-info', async (req, reply) => {
    if (!(await intercept(req, reply, 'oauth2/token-info'))) return reply
    const token = (req.body as { token?: unknown } | null)?.token
    const instanceId = tokenInstance(token) ?? (typeof token === 'string' ? wix.verifyRefreshToken(token) : undefined)
    // As Wix's own example answers: `active` as a string.
    return instanceId ? { active: 'true', instanceId, clientId: wix.appId } : { active: 'false' }
  })

  fastify.post('/apps/v1/bi-event', async (req, reply) => {
    if (!(await intercept(req, reply, 'bi-event'))) return reply
    const auth = req.headers.authorization
    if (!auth) return wixError(reply, 401, 'Missing Authorization header', { reason: 'UNAUTHENTICATED' })
    if (/^bearer /i.test(auth)) {
      return wixError(reply, 401, 'Authorization must be the raw access token, without "Bearer"', { reason: 'UNAUTHENTICATED' })
    }
    if (!wix.isValidAccessToken(auth)) return wixError(reply, 401, 'Invalid or expired access token', { reason: 'UNAUTHENTICATED' })
    const b = z.object({ eventName: z.literal('APP_FINISHED_CONFIGURATION') }).safeParse(req.body)
    if (!b.success) return wixError(reply, 400, 'Unsupported event', { issues: issuesOf(b.error) })
    return {}
  })

  // -- switches for a human or another process --

  // The JSON switches take JSON only: a cross-site form can post text/plain or a form, never
  // application/json without a CORS preflight, which this server never answers.
  const jsonOnly = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
      return wixError(reply, 415, 'Control requests must be application/json')
    }
  }
  // The panel's forms carry a token only the panel's page shows, and must come from this origin.
  const csrfToken = createHmac('sha256', opts.appSecret).update('sandbox control panel').digest('base64url')
  const sameOrigin = (req: FastifyRequest) => {
    const site = req.headers['sec-fetch-site']
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return false
    const origin = req.headers.origin
    if (origin === undefined) return true
    try { return new URL(origin).host === req.headers.host } catch { return false }
  }

  fastify.post('/_control/fail', { preHandler: jsonOnly }, async (req, reply) => {
    const f = failureBody.safeParse(req.body)
    if (!f.success) return wixError(reply, 400, 'Invalid failure', { issues: issuesOf(f.error) })
    wix.failNext(f.data)
    return reply.code(204).send()
  })

  fastify.post('/_control/reset', { preHandler: jsonOnly }, async (_req, reply) => {
    wix.reset()
    return reply.code(204).send()
  })

  fastify.get('/_control/requests', async () => wix.requests.map(redactRequest))

  // -- the same switches as a page of plain forms, for a person showing the failure paths --

  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))))
  })

  fastify.get('/', async (req, reply) => {
    const path = req.url.split('?')[0]!
    // Relative form actions need the trailing slash (`/_sandbox/wix` → `/_sandbox/wix/`).
    if (!path.endsWith('/')) return reply.redirect(`${path.slice(path.lastIndexOf('/') + 1)}/`, 302)
    return sendHtml(reply, 200, controlPanel(wix, csrfToken))
  })

  fastify.post('/_control/action', async (req, reply) => {
    const sent = (req.body as { csrf?: unknown } | null)?.csrf
    if (!sameOrigin(req) || typeof sent !== 'string' || !safeEqual(sent, csrfToken)) {
      return sendHtml(reply, 403, page('Refused', '<p>This request did not come from the control panel. <a href="../">Open the control panel</a></p>'))
    }
    const b = actionBody.safeParse(req.body)
    if (!b.success) return sendHtml(reply, 400, page('Unknown action', '<p><a href="../">Back to the control panel</a></p>'))
    const { action, instanceId } = b.data
    if (action === 'release') wix.releaseAll()
    else if (action === 'reset') wix.reset()
    else if (action === 'install-new-app') await wix.installApp()
    else if (action === 'uninstall') {
      if (!instanceId) return sendHtml(reply, 400, page('Choose a site', '<p><a href="../">Back to the control panel</a></p>'))
      await wix.uninstallApp(instanceId.toLowerCase())
    } else wix.failNext(SANDBOX_SWITCHES[action]!.failure)
    // 303: the browser GETs the panel again, and a reload does not post twice.
    return reply.redirect('../', 303)
  })
}

function controlPanel(wix: FakeWix, csrf: string): string {
  const token = `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`
  const count = (endpoint: string, grant?: string) => wix.requests.filter((r) =>
    r.endpoint === endpoint && (!grant || (r.body as { grant_type?: unknown } | null)?.grant_type === grant)).length
  const button = (action: string, label: string) =>
    `<form method="post" action="_control/action">${token}<input type="hidden" name="action" value="${escapeHtml(action)}">` +
    `<button type="submit" id="${escapeHtml(action)}">${escapeHtml(label)}</button></form>`
  const describe = (f: FakeWixFailure & { left: number }) =>
    `${f.endpoint}${f.grant ? ` (${f.grant})` : ''}: ${f.hang ? 'hangs' : `${f.delayMs ? `after ${f.delayMs / 1000} s, ` : ''}${f.status ?? 'a normal answer'}`}, ${f.left} more time(s)`
  const pending = wix.pendingFailures()
  const sites = wix.installedInstances().slice(0, 50)
  const uninstall = sites.length
    ? `<form method="post" action="_control/action">${token}<input type="hidden" name="action" value="uninstall">` +
      `<label for="instanceId">Site (instance id)</label> <select name="instanceId" id="instanceId">` +
      sites.map((id) => `<option value="${escapeHtml(id)}">${escapeHtml(id)}</option>`).join('') +
      `</select> <button type="submit" id="uninstall">Uninstall the app from this site (sends AppRemoved)</button></form>`
    : '<p id="uninstall">No site has the app installed yet.</p>'
  const sent = wix.webhooksSent.slice(-10).reverse().map((w) =>
    `<li>${escapeHtml(`${new Date(w.at).toISOString()} ${w.eventType} ${w.instanceId} → ${w.status || 'not delivered'}`)}</li>`).join('')
  const recent = wix.requests.slice(-20).reverse().map((r) => {
    const grant = (r.body as { grant_type?: unknown } | null)?.grant_type
    return `<li>${escapeHtml(`${new Date(r.at).toISOString()} ${r.method} ${r.endpoint}${typeof grant === 'string' ? ` ${grant}` : ''} → ${r.status || 'held'}`)}</li>`
  }).join('')
  return page('Sandbox Wix control panel',
    `<p id="calls">Recorded calls: ${wix.requests.length} (code exchanges: ${count('oauth/access', 'authorization_code')}, ` +
    `refreshes: ${count('oauth/access', 'refresh_token')}, bi-events: ${count('bi-event')}).</p>` +
    `<h2>Make the next call fail</h2>${Object.entries(SANDBOX_SWITCHES).map(([k, s]) => button(k, s.label)).join('')}` +
    `<h2>Queued failures</h2>${pending.length ? `<ul id="pending">${pending.map((f) => `<li>${escapeHtml(describe(f))}</li>`).join('')}</ul>` : '<p id="pending">None.</p>'}` +
    button('release', 'Answer held calls now') + button('reset', 'Clear queued failures and recorded calls') +
    `<h2>The app's life on a site</h2>` +
    button('install-new-app', 'Install as a new app on a new site (no redirect flow; sends AppInstalled)') + uninstall +
    `<h2>Webhooks sent</h2>${sent ? `<ol id="webhooks">${sent}</ol>` : '<p id="webhooks">None yet.</p>'}` +
    `<h2>Latest calls</h2>${recent ? `<ol>${recent}</ol>` : '<p>None yet.</p>'}`)
}

/** A body as recorded: kept while small and shallow, so listing calls can never fail on one. */
function recordable(body: unknown): unknown {
  if (body === undefined || body === null) return {}
  const stack: [unknown, number][] = [[body, 0]]
  let nodes = 0
  while (stack.length) {
    const [v, depth] = stack.pop()!
    if (v && typeof v === 'object') {
      if (depth > 8 || ++nodes > 500) return { unrecorded: 'body too large or too deeply nested to record' }
      for (const child of Object.values(v)) stack.push([child, depth + 1])
    }
  }
  return body
}

function wixError(reply: FastifyReply, status: number, message: string, details: Record<string, unknown> = {}) {
  return reply.code(status).send({ message, details })
}

function redactRequest(r: RecordedRequest): RecordedRequest {
  const body = r.body && typeof r.body === 'object' && !Array.isArray(r.body)
    ? Object.fromEntries(Object.entries(r.body).map(([k, v]) => [k, secretBody.includes(k) ? REDACTED : v]))
    : r.body
  const headers = { ...r.headers, ...(r.headers.authorization !== undefined && { authorization: REDACTED }) }
  return { ...r, headers, body }
}

/** The fake alone on a real port, for tests and for pointing a separately run service at it. */
export async function startFakeWix(opts: Partial<FakeWixOptions> & { port?: number } = {}) {
  const wix = createFakeWix({
    ...opts,
    appId: opts.appId ?? randomUUID(),
    appSecret: opts.appSecret ?? random('fake-secret-'),
  })
  const app = Fastify({ logger: false })
  app.setNotFoundHandler((_req, reply) => wixError(reply, 404, 'Not found'))
  await app.register(fakeWixPlugin, { appId: wix.appId, appSecret: wix.appSecret, wix, allowForcedInstanceId: opts.allowForcedInstanceId ?? true })
  const address = await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 })
  return {
    url: address.replace(/\/+$/, ''),
    wix,
    close: () => app.close(),
  }
}
