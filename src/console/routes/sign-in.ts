import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { safeEqual } from '../../crypto/oauth-state.ts'
import { signInPage } from '../layout.ts'
import { SESSION_TTL_MS, type SessionStore } from '../sessions.ts'
import { checkCsrf, COOKIE, csrfBody } from './guards.ts'

const signInBody = z.object({
  token: z.string().max(1024),
  next: z.string().max(300).regex(/^\/console(\/[A-Za-z0-9/-]*)?$/, 'must be a console page').optional(),
})

/** Signing in with the admin token (it never leaves the form), and out again. */
const signInRoutes: FastifyPluginAsyncZod<{ sessions: SessionStore }> = async (app, { sessions }) => {
  const { config } = app

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
}

export default signInRoutes
