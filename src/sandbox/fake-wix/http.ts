// What every route group of the fake reads and answers with: Wix's error shape, plain pages.
import type { FastifyReply } from 'fastify'
import type { z } from 'zod'
import { escapeHtml } from '../../routes/html.ts'

export const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

export function wixError(reply: FastifyReply, status: number, message: string, details: Record<string, unknown> = {}) {
  return reply.code(status).send({ message, details })
}

export const issuesOf = (e: z.ZodError) => e.issues.map((i) => ({ path: i.path.join('.'), message: i.message }))

export const page = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
  `<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`

export const sendHtml = (reply: FastifyReply, status: number, html: string) =>
  reply.code(status).type('text/html; charset=utf-8').send(html)
