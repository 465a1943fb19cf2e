import type { FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { safeEqual } from '../../crypto/oauth-state.ts'
import { ConsoleErrors } from '../errors.ts'
import { signInPage } from '../layout.ts'

/** The console session's cookie: a random id, signed, HttpOnly, SameSite=Strict. */
export const COOKIE = 'wie_console'

/** Every POST but the sign-in carries the session's CSRF token. */
export const csrfBody = z.object({ csrf: z.string().max(100), confirm: z.literal('yes').optional() })

/**
 * The signed-in session, or the sign-in form (and no data) in its place. A page that offers to
 * sign in is a 200: a browser would log a 401 page load as an error.
 */
export const signedIn = (request: FastifyRequest, reply: FastifyReply, appName: string) => {
  if (request.consoleSession) return request.consoleSession
  const next = request.url !== '/console' ? request.url.split('?')[0] : undefined
  reply.type('text/html; charset=utf-8').send(signInPage(appName, { next }))
  return undefined
}

export const checkCsrf = (request: FastifyRequest, csrf: string) => {
  const session = request.consoleSession
  if (!session) throw new ConsoleErrors.CONSOLE_SIGNED_OUT()
  if (!safeEqual(csrf, session.csrf)) {
    throw new ConsoleErrors.CONSOLE_FORBIDDEN('The form is out of date: reload the page and try again')
  }
  return session
}
