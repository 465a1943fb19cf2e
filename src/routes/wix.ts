import type { CookieSerializeOptions } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { installationIdOf, OAUTH_STATE_PATTERN } from '../crypto/oauth-state.ts'
import type { Workflow } from '../engine/index.ts'
import { Errors } from '../errors.ts'
import { UUID } from '../installation/queries.ts'
import { normalizeInstanceId, WIX_GUID } from '../wix/ids.ts'
import { bindWorkflow } from './bind-log.ts'
import { cancelledPage, htmlPage, installFailedPage, waitingPage } from './html.ts'

/**
 * One state cookie per begun install, named after its installation, so installs begun in several
 * tabs of one browser each keep theirs; the flow cookie likewise, once the state is spent.
 */
const STATE_COOKIE = 'wix_install_state_'
const FLOW_COOKIE = 'wix_install_flow_'
/** Marks a start sent on to PUBLIC_URL's host, so it is never sent on twice. */
const MOVED_PARAM = 'moved'
/** Abandoned consent screens leave state cookies behind; past this many, the extras are dropped. */
const MAX_STATE_COOKIES = 8

const errorReply = z.object({ statusCode: z.number(), code: z.string(), error: z.string(), message: z.string() })
const errorReplies = { 400: errorReply, 403: errorReply, 409: errorReply, 410: errorReply, 429: errorReply }
/** Pages for the browser, sent as they are. */
const page = z.string().describe('An HTML page')

const state = z.string().regex(OAUTH_STATE_PATTERN, 'must be a state this service issued')
const redirectQuery = z
  .object({
    code: z.string().min(1).max(2048).optional(),
    state,
    instanceId: z.string().regex(WIX_GUID, 'must be a Wix instance id (a GUID)').transform(normalizeInstanceId).optional(),
    error: z.string().min(1).max(200).optional(),
    error_description: z.string().max(1000).optional(),
  })
  .refine((q) => q.error !== undefined || (q.code !== undefined && q.instanceId !== undefined), {
    message: 'needs code and instanceId (or error)',
  })

/** The three browser-facing steps: App URL, platform-started install, Redirect URL. */
const wixRoutes: FastifyPluginAsyncZod = async (app) => {
  const { config, installFlow: flow, engine } = app
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

  // Wix may load these pages in its window or an iframe; nothing here may be cached or leak a
  // code or token through the Referer header.
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('cross-origin-opener-policy', 'unsafe-none')
    reply.header('cache-control', 'no-store')
    reply.header('referrer-policy', 'no-referrer')
  })

  // Fastify's query parser keeps a malformed escape (`%zz`, `%E0%A4%A`) or invalid UTF-8 (`%ff`)
  // as literal text; a value nobody sent is refused before it can spend a state or start a flow.
  app.addHook('onRequest', async (request) => {
    const query = request.url.indexOf('?')
    if (query < 0) return
    for (const part of request.url.slice(query + 1).split('&')) {
      try {
        decodeURIComponent(part.replace(/\+/g, ' '))
      } catch {
        throw new Errors.INVALID_REQUEST('the query string holds a malformed percent-encoding or invalid UTF-8')
      }
    }
  })

  const readCookie = (request: FastifyRequest, name: string) => {
    const raw = request.cookies[name]
    if (raw === undefined) return undefined
    const unsigned = request.unsignCookie(raw)
    // A tampered cookie is present but proves nothing: it can only mismatch.
    return unsigned.valid && unsigned.value !== null ? unsigned.value : ''
  }

  /** Aborts when the browser goes away before its answer is sent: waiting on for it costs the database. */
  const browserGone = (reply: FastifyReply) => {
    const gone = new AbortController()
    // A browser that left before we got here has already closed its socket: no event will come.
    if (reply.request.raw.socket?.destroyed || reply.raw.destroyed) gone.abort()
    else {
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) gone.abort()
      })
    }
    return gone.signal
  }

  /** Waits for the exchange, then answers; a browser that left gets nothing sent on its behalf. */
  async function settleAndSendOn(reply: FastifyReply, installationId: string, waitMs: number) {
    const gone = browserGone(reply)
    const { installation, sentOn, sentBack } = await flow.settled(installationId, waitMs, gone)
    // No one to send on, and a close-window token handed out to no one would be spent.
    if (gone.aborted) return reply.code(202).send()
    if (sentBack) {
      // Its code was spent by a process that died: back through Wix's installer for a new one,
      // with a fresh state bound to this browser as at the start.
      setCookie(reply, stateCookie(installationId), sentBack.state, config.consentTimeoutMs / 1000)
      return reply.redirect(sentBack.installerUrl, 302)
    }
    return sendOn(reply, installation!, sentOn)
  }

  /** Where a browser waiting on its installation checks again. */
  const continueUrl = (installationId: string) => `${config.publicUrl}/wix/redirect/continue?installation=${installationId}`

  /** The state is spent: from here this browser follows its installation by the flow cookie. */
  function followInstallation(reply: FastifyReply, installationId: string) {
    clearCookie(reply, stateCookie(installationId))
    setCookie(reply, flowCookie(installationId), installationId, 15 * 60)
  }

  const publicHost = new URL(config.publicUrl).host
  /**
   * A start on another name for this server (127.0.0.1 for localhost, an apex for www) would set
   * its state cookie on a host the Redirect URL never comes back to: it goes to PUBLIC_URL's host
   * first, same path and query. `request.host` follows TRUST_PROXY. One hop only: a proxy that
   * rewrites the Host header (and is not trusted) would bounce it forever, so a request that was
   * sent here already stays, and the log says what to fix.
   */
  function canonicalStart(request: FastifyRequest, path: string): string | undefined {
    if ((request.host ?? '').toLowerCase() === publicHost) return undefined
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : ''
    const params = new URLSearchParams(query)
    if (params.has(MOVED_PARAM)) {
      request.log.warn({ host: request.host, publicHost }, 'a start arrived on a host other than PUBLIC_URL\'s twice: '
        + 'set PUBLIC_URL to the address browsers use, or TRUST_PROXY so X-Forwarded-Host is believed')
      return undefined
    }
    return `${config.publicUrl}${path}?${query ? `${query}&` : ''}${MOVED_PARAM}=1`
  }

  async function begin(request: FastifyRequest, reply: FastifyReply, origin: 'app-url' | 'platform', token?: string) {
    const canonical = canonicalStart(request, origin === 'app-url' ? '/wix/app-url' : '/wix/install')
    if (canonical) return reply.redirect(canonical, 302)
    const started = await flow.begin(origin, token)
    bindWorkflow(request, reply, started.installation.id)
    // Browsers send cookies of one path oldest first: the oldest abandoned ones go.
    const older = Object.keys(request.cookies).filter((name) => name.startsWith(`${prefix}${STATE_COOKIE}`))
    for (const name of older.slice(0, Math.max(0, older.length - (MAX_STATE_COOKIES - 1)))) clearCookie(reply, name)
    setCookie(reply, stateCookie(started.installation.id), started.state, config.consentTimeoutMs / 1000)
    return reply.redirect(started.installerUrl, 302)
  }

  /** Step 6, or a page that gets there once the exchange is over. */
  async function sendOn(reply: FastifyReply, installation: Workflow, sentOn: boolean) {
    const destination = await flow.destination(installation, sentOn)
    if (destination.kind === 'redirect') {
      // Sent on for good: nothing is left to follow, so no cookie is left to replay.
      clearCookie(reply, flowCookie(installation.id))
      return reply.redirect(destination.url, 302)
    }
    if (destination.kind === 'installed') {
      clearCookie(reply, flowCookie(installation.id))
      return reply.type('text/html; charset=utf-8').send(htmlPage('Installation complete',
        `${config.appName} is installed on your site. You can close this window.`, { appName: config.appName }))
    }
    if (destination.kind === 'pending') {
      return reply.code(202).type('text/html; charset=utf-8')
        .send(waitingPage(config.appName, continueUrl(installation.id), destination.detour))
    }
    clearCookie(reply, flowCookie(installation.id))
    return reply.type('text/html; charset=utf-8').send(installFailedPage(config.appName, config.publicUrl, destination.failure?.reason))
  }

  app.get('/wix/app-url', {
    schema: {
      querystring: z.object({ token: z.string().min(1).max(4096), [MOVED_PARAM]: z.literal('1').optional() }),
      response: errorReplies,
    },
    handler: async (request, reply) => begin(request, reply, 'app-url', request.query.token),
  })

  app.get('/wix/install', {
    schema: { querystring: z.object({ [MOVED_PARAM]: z.literal('1').optional() }), response: errorReplies },
    handler: async (request, reply) => begin(request, reply, 'platform'),
  })

  app.get('/wix/redirect', {
    schema: { querystring: redirectQuery, response: { ...errorReplies, 200: page, 202: page } },
    handler: async (request, reply) => {
      const q = request.query
      const cookieState = readCookie(request, stateCookie(installationIdOf(q.state)))
      if (q.error !== undefined) {
        const declined = await flow.decline({ error: q.error, description: q.error_description, state: q.state }, cookieState)
        bindWorkflow(request, reply, declined.id)
        clearCookie(reply, stateCookie(declined.id))
        return reply.type('text/html; charset=utf-8').send(cancelledPage(config.appName, config.publicUrl))
      }
      const installation = await flow.callback({ code: q.code!, state: q.state, instanceId: q.instanceId! }, cookieState).catch((err: unknown) => {
        // This browser's own callback again: the answer stays 409, and the page (for a browser)
        // moves on to wherever its installation got to, as the first answer would have.
        if (err instanceof Errors.STATE_ALREADY_USED && 'installationId' in err) {
          followInstallation(reply, String(err.installationId))
          Object.assign(err, { continueTo: continueUrl(String(err.installationId)) })
        }
        throw err
      })
      bindWorkflow(request, reply, installation.id)
      followInstallation(reply, installation.id)
      return settleAndSendOn(reply, installation.id, config.redirectWaitMs)
    },
  })

  app.get('/wix/redirect/continue', {
    schema: {
      querystring: z.object({ installation: z.uuid().optional().describe('The installation this page follows (several tabs may install at once)') }),
      response: { 200: page, 202: page, 400: errorReply, 429: errorReply },
    },
    handler: async (request, reply) => {
      // Without the installation named, the browser's one flow cookie says which (the newest if several).
      const named = request.query.installation
      const name = named ? flowCookie(named) : Object.keys(request.cookies).filter((n) => n.startsWith(`${prefix}${FLOW_COOKIE}`)).at(-1)
      const id = name && readCookie(request, name)
      if (!id || (named && id !== named)) throw new Errors.FLOW_COOKIE_MISSING()
      // The signature proves only that this service set the value, under any name: a state cookie's
      // value sent under a flow cookie's name is refused here, before it reaches the database.
      if (!UUID.test(id) || name !== flowCookie(id)) throw new Errors.FLOW_COOKIE_INVALID()
      const installation = await engine.get(id)
      if (!installation) throw new Errors.FLOW_COOKIE_MISSING()
      bindWorkflow(request, reply, id)
      return settleAndSendOn(reply, id, config.redirectWaitMs / 2)
    },
  })
}

export default wixRoutes
