import type { FastifyReply } from 'fastify'
import type { ConsoleSession } from '../sessions.ts'

export const html = (reply: FastifyReply, page: string) => reply.type('text/html; charset=utf-8').send(page)

/** What every console page's frame shows: its title, the app, the session's CSRF token, a notice. */
export const shell = (appName: string, title: string, session: ConsoleSession, notice?: { kind: 'ok' | 'error'; text: string }) =>
  ({ title, appName, csrf: session.csrf, notice })
