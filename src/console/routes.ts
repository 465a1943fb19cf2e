/**
 * The admin console's routes, one plugin a concern in routes/: assets.ts, list.ts (the front page),
 * sign-in.ts (in and out), installation.ts (an installation's page), actions.ts (the forms it
 * posts; render-installation.ts draws the page both answer with); guards.ts holds the session and
 * CSRF checks they share, html.ts how a page is sent.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { ConsoleErrors } from './errors.ts'
import actionRoutes from './routes/actions.ts'
import assetRoutes from './routes/assets.ts'
import { COOKIE } from './routes/guards.ts'
import installationRoutes from './routes/installation.ts'
import listRoutes from './routes/list.ts'
import signInRoutes from './routes/sign-in.ts'
import { createSessionStore, type ConsoleSession } from './sessions.ts'

declare module 'fastify' {
  interface FastifyRequest {
    consoleSession: (ConsoleSession & { id: string }) | null
  }
}

/** Console pages load only from this origin and may not be framed. */
const CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

/**
 * The admin console: server-rendered pages behind a sign-in with the admin token. The session is a
 * random id in a signed, HttpOnly, SameSite=Strict cookie (the token never leaves the sign-in form);
 * every POST but the sign-in carries the session's CSRF token, and every POST must come from this origin.
 */
const consoleRoutes: FastifyPluginAsyncZod = async (app) => {
  const { config } = app
  const sessions = createSessionStore(app.sql, app.now)

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

  await app.register(assetRoutes)
  await app.register(listRoutes)
  await app.register(signInRoutes, { sessions })
  await app.register(installationRoutes)
  await app.register(actionRoutes)
}

export default consoleRoutes
