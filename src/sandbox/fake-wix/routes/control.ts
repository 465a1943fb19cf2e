import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { MAX_HANG_MS } from '../failure-switches.ts'
import { issuesOf, wixError } from '../http.ts'
import type { FakeWix, RecordedRequest } from '../model-types.ts'

const REDACTED = '[redacted]'
const secretBody = ['client_secret', 'code', 'refresh_token']

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

// The JSON switches take JSON only: a cross-site form can post text/plain or a form, never
// application/json without a CORS preflight, which this server never answers.
const jsonOnly = async (req: FastifyRequest, reply: FastifyReply) => {
  if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
    return wixError(reply, 415, 'Control requests must be application/json')
  }
}

/** The failure switches as JSON, for a test or another process. */
export async function controlRoutes(fastify: FastifyInstance, opts: { wix: FakeWix }): Promise<void> {
  const { wix } = opts

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
}

function redactRequest(r: RecordedRequest): RecordedRequest {
  const body = r.body && typeof r.body === 'object' && !Array.isArray(r.body)
    ? Object.fromEntries(Object.entries(r.body).map(([k, v]) => [k, secretBody.includes(k) ? REDACTED : v]))
    : r.body
  const headers = { ...r.headers, ...(r.headers.authorization !== undefined && { authorization: REDACTED }) }
  return { ...r, headers, body }
}
