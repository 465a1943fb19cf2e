import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { safeEqual } from '../crypto/oauth-state.ts'
import { valueOf, type Workflow } from '../engine/index.ts'
import { effectAttempts } from '../installation/queries.ts'
import { attemptsView, historyView, installationView } from '../installation/view.ts'
import { idParams } from '../routes/admin-schemas.ts'
import { startAgainUrl } from '../routes/html.ts'
import { layoutMachine, renderDiagram } from './diagram.ts'
import { ConsoleErrors } from './errors.ts'
import { CONSOLE_CSS, CONSOLE_JS, consolePage, signInPage } from './layout.ts'
import { createSessionStore, SESSION_TTL_MS, type ConsoleSession } from './sessions.ts'
import { installationView as installationPage, listView, type Actions } from './views.ts'

const COOKIE = 'wie_console'

declare module 'fastify' {
  interface FastifyRequest {
    consoleSession: (ConsoleSession & { id: string }) | null
  }
}

const listQuery = z.object({
  state: z.union([z.literal(''), z.string().regex(/^[A-Za-z]{1,40}$/, 'must be a state name')]).optional(),
  reason: z.union([z.literal(''), z.string().regex(/^[a-z_]{1,40}$/, 'must be a failure reason')]).optional(),
  q: z.string().trim().max(64).regex(/^[A-Za-z0-9-]*$/, 'must be an instance id or an installation id').optional(),
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number({ error: 'must be a number' }).int().min(1).max(200).default(50),
})
const signInBody = z.object({
  token: z.string().max(1024),
  next: z.string().max(300).regex(/^\/console(\/[A-Za-z0-9/-]*)?$/, 'must be a console page').optional(),
})
const csrfBody = z.object({ csrf: z.string().max(100), confirm: z.literal('yes').optional() })
const formSchema = { hide: true, params: idParams, body: csrfBody }
const ACTIONS = ['finish', 'retry', 'cancel'] as const
/** Console pages load only from this origin and may not be framed. */
const CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

/**
 * The admin console: server-rendered pages behind a sign-in with the admin token. The session is a
 * random id in a signed, HttpOnly, SameSite=Strict cookie (the token never leaves the sign-in form);
 * every POST but the sign-in carries the session's CSRF token, and every POST must come from this origin.
 */
const consoleRoutes: FastifyPluginAsyncZod = async (app) => {
  const { config, installations, engine } = app
  const sessions = createSessionStore(app.sql, app.now)
  const machine = () => engine.definition('installation').machine

  // Forms post urlencoded; only this scope reads that, and only small bodies.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 4096 },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
  )

  app.decorateRequest('consoleSession', null)
  app.addHook('onRequest', async (request, reply) => {
    // No console page may be framed, cached, load anything from elsewhere, or leak its URL to another site.
    reply.header('content-security-policy', CSP)
    reply.header('cache-control', 'no-store')
    reply.header('referrer-policy', 'same-origin')
    reply.header('x-content-type-options', 'nosniff')
    const raw = request.cookies[COOKIE]
    const unsigned = raw ? request.unsignCookie(raw) : undefined
    if (unsigned?.valid && unsigned.value) {
      const session = await sessions.find(unsigned.value)
      if (session) request.consoleSession = { ...session, id: unsigned.value }
    }
    if (request.method === 'POST') {
      // A cross-site form cannot name this origin: that alone stops a forged sign-in.
      const origin = request.headers.origin
      const own = [new URL(config.publicUrl).origin, `${request.protocol}://${request.host}`]
      if (origin !== undefined && !own.includes(origin)) {
        throw new ConsoleErrors.CONSOLE_FORBIDDEN('The request did not come from this console')
      }
    }
  })

  /**
   * The signed-in session, or the sign-in form (and no data) in its place. A page that offers to
   * sign in is a 200: a browser would log a 401 page load as an error.
   */
  const signedIn = (request: FastifyRequest, reply: FastifyReply) => {
    if (request.consoleSession) return request.consoleSession
    const next = request.url !== '/console' ? request.url.split('?')[0] : undefined
    reply.type('text/html; charset=utf-8').send(signInPage(config.appName, { next }))
    return undefined
  }
  const checkCsrf = (request: FastifyRequest, csrf: string) => {
    const session = request.consoleSession
    if (!session) throw new ConsoleErrors.CONSOLE_SIGNED_OUT()
    if (!safeEqual(csrf, session.csrf)) {
      throw new ConsoleErrors.CONSOLE_FORBIDDEN('The form is out of date: reload the page and try again')
    }
    return session
  }
  const html = (reply: FastifyReply, page: string) => reply.type('text/html; charset=utf-8').send(page)
  const shell = (title: string, session: ConsoleSession, notice?: { kind: 'ok' | 'error'; text: string }) =>
    ({ title, appName: config.appName, csrf: session.csrf, notice })

  app.get('/console/assets/console.css', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/css; charset=utf-8').send(CONSOLE_CSS))
  app.get('/console/assets/console.js', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').send(CONSOLE_JS))

  app.get('/console', { schema: { hide: true, querystring: listQuery } }, async (request, reply) => {
    const session = signedIn(request, reply)
    if (!session) return reply
    const { state, reason, q, cursor, limit } = request.query
    const filter = { state: state || undefined, reason: reason || undefined }
    let page: { items: Workflow[]; nextCursor: string | null }
    if (q) {
      // An id finds its installation; an instance id finds every installation it had.
      const byInstance = await installations.list({ ...filter, instanceId: q, limit, cursor })
      const byId = await installations.find(q).catch(() => undefined)
      const extra = byId && !byInstance.items.some((w) => w.id === byId.id) ? [byId] : []
      page = { items: [...extra, ...byInstance.items], nextCursor: byInstance.nextCursor }
    } else {
      page = await installations.list({ ...filter, limit, cursor })
    }
    const stats = await installations.stats()
    const states = Object.keys(machine().root.states)
    return html(reply, consolePage(shell('Installations', session), listView({
      stats,
      states,
      items: page.items.map(installationView),
      nextCursor: page.nextCursor,
      filter: { ...filter, q, limit: limit === 50 ? undefined : String(limit) },
    })))
  })

  app.post('/console/sign-in', { schema: { hide: true, body: signInBody } }, async (request, reply) => {
    const { token, next } = request.body
    if (!safeEqual(token, config.adminToken)) {
      request.log.info({ code: 'CONSOLE_SIGN_IN_REJECTED' }, 'console sign-in rejected')
      return reply.code(401).type('text/html; charset=utf-8').send(signInPage(config.appName, { next, rejected: true }))
    }
    const session = await sessions.create()
    reply.setCookie(COOKIE, session.id, {
      path: '/console',
      httpOnly: true,
      sameSite: 'strict',
      secure: config.secureCookies,
      signed: true,
      maxAge: SESSION_TTL_MS / 1000,
    })
    request.log.info('console sign-in')
    return reply.redirect(next ?? '/console', 303)
  })

  app.post('/console/sign-out', { schema: { hide: true, body: csrfBody } }, async (request, reply) => {
    const session = checkCsrf(request, request.body.csrf)
    await sessions.end(session.id)
    reply.clearCookie(COOKIE, { path: '/console' })
    return reply.redirect('/console', 303)
  })

  /** The actions the machine itself would take in this state. */
  const actionsOf = (w: Workflow): Actions => {
    const snapshot = machine().resolveState({ value: valueOf(w.statePath), context: w.context })
    const failedBefore = Boolean((w.context as { lastError?: unknown }).lastError)
    const canFinish = snapshot.can({ type: 'FINISH' })
    const cancel = snapshot.can({ type: 'CANCEL' })
    return { finish: canFinish && !failedBefore, retry: canFinish && failedBefore, cancel }
  }

  async function renderInstallation(request: FastifyRequest, reply: FastifyReply, w: Workflow, session: ConsoleSession,
    notice?: { kind: 'ok' | 'error'; text: string }) {
    const view = installationView(w)
    const [history, attempts, layout, siblings] = await Promise.all([
      engine.history(w.id),
      effectAttempts(app.sql, w.id),
      layoutMachine(machine()),
      view.instanceId || view.claimedInstanceId
        ? installations.list({ instanceId: (view.instanceId ?? view.claimedInstanceId)!, limit: 20 }) : { items: [w] },
    ])
    const steps = historyView(history)
    const title = `The installation machine, ${w.statePath} now`
    const diagram = renderDiagram(layout, { current: w.statePath, steps, title })
    return html(reply, consolePage(shell(`Installation ${w.id.slice(0, 8)}`, session, notice), installationPage({
      installation: view,
      history: steps,
      attempts: attemptsView(attempts),
      siblings: siblings.items.map(installationView),
      diagram, actions: actionsOf(w), csrf: session.csrf, inspect: { enabled: Boolean(app.workflowInspector) },
      reinstallUrl: startAgainUrl(config.publicUrl),
    })))
  }

  const doneQuery = z.object({ done: z.enum([...ACTIONS, 'inspect']).optional() })
  app.get('/console/installations/:id', { schema: { hide: true, params: idParams, querystring: doneQuery } },
    async (request, reply) => {
      const session = signedIn(request, reply)
      if (!session) return reply
      const w = await installations.find(request.params.id)
      const done = request.query.done
      return renderInstallation(request, reply, w, session, done && { kind: 'ok', text: DONE_WORDS[done] })
    })

  app.get('/console/installations/:id/version', { schema: { hide: true, params: idParams } }, async (request) => {
    if (!request.consoleSession) throw new ConsoleErrors.CONSOLE_SIGNED_OUT()
    const w = await installations.find(request.params.id)
    return { version: w.version, state: w.statePath }
  })

  for (const action of ACTIONS) {
    app.post(`/console/installations/:id/${action}`, { schema: formSchema }, async (request, reply) => {
      const session = checkCsrf(request, request.body.csrf)
      if (request.body.confirm !== 'yes') throw new ConsoleErrors.CONSOLE_NOT_CONFIRMED()
      const before = await installations.find(request.params.id)
      let after: Workflow
      try {
        after = await installations[action](before)
      } catch (err) {
        const e = err as { statusCode?: number; message?: string }
        if (!e.statusCode || e.statusCode >= 500) throw err
        reply.code(e.statusCode)
        const now = await installations.find(before.id)
        return renderInstallation(request, reply, now, session, { kind: 'error', text: e.message ?? 'refused' })
      }
      request.log.info({ workflowId: after.id, action }, 'console action')
      const lastError = (after.context as { lastError?: { message: string } | null }).lastError
      if (action !== 'cancel' && after.statePath === 'SetupIncomplete.waiting' && lastError) {
        reply.code(502)
        const text = `Wix did not accept the bi-event: ${lastError.message}`
        return renderInstallation(request, reply, after, session, { kind: 'error', text })
      }
      return reply.redirect(`/console/installations/${after.id}?done=${action}`, 303)
    })
  }

  app.post('/console/installations/:id/inspect', { schema: formSchema }, async (request, reply) => {
    checkCsrf(request, request.body.csrf)
    const w = await installations.find(request.params.id)
    if (!app.workflowInspector) throw new ConsoleErrors.CONSOLE_INSPECTOR_OFF()
    await app.workflowInspector.replay(w.id)
    return reply.redirect(`/console/installations/${w.id}?done=inspect`, 303)
  })
}

const DONE_WORDS = {
  finish: 'the app\'s setup was reported finished to Wix.',
  retry: 'the bi-event was sent again.',
  cancel: 'the installation is cancelled.',
  inspect: 'its history was replayed into the XState inspector.',
} as const

export default consoleRoutes
