import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { Workflow } from '../engine/index.ts'
import { Errors } from '../errors.ts'
import { effectAttempts, supersededBy } from '../installation/queries.ts'
import { attemptsView, historyView, installationSchema, installationView, installationWithHistorySchema } from '../installation/view.ts'
import { errorReply, idParams } from './admin-schemas.ts'
import { bindWorkflow } from './bind-log.ts'

/** A date Postgres can store: a JavaScript date outside years 1–9999 would be a 500 there. */
const date = z.coerce
  .date({ error: 'must be an ISO date' })
  .min(new Date('0001-01-01T00:00:00Z'), 'must be after year 1')
  .max(new Date('9999-12-31T23:59:59.999Z'), 'must be before year 10000')

const listQuery = z.object({
  state: z.string().regex(/^[A-Za-z]{1,40}$/, 'must be a state name').optional(),
  reason: z.string().regex(/^[a-z_]{1,40}$/, 'must be a failure reason').optional(),
  instanceId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be a Wix instanceId').optional(),
  createdFrom: date.optional().describe('Created at or after; with createdTo or alone, the list is newest-created first'),
  createdTo: date.optional().describe('Created before; with createdFrom or alone, the list is newest-created first'),
  updatedFrom: date.optional(),
  updatedTo: date.optional(),
  limit: z.coerce.number({ error: 'must be a number' }).int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional().describe("The previous page's nextCursor, opaque. It belongs to its page's order: used after adding or dropping the created-at filters, it is a 400 INVALID_CURSOR"),
})

const stats = z.object({
  installations: z.record(z.string(), z.number()).describe('Installations by top-level state'),
  failures: z.record(z.string(), z.number()).describe('Failed installations by reason'),
  jobs: z.object({
    waiting: z.number().describe('Effects and timers due and not yet claimed'),
    running: z.number(),
    oldestWaitingSeconds: z.number().nullable(),
    dead: z.record(z.string(), z.number()).describe('Jobs that can never run, by reason (PAYLOAD_UNREADABLE, UNKNOWN_MACHINE, ATTEMPTS_EXHAUSTED)'),
  }),
  wixCredentials: z.object({
    status: z.enum(['ok', 'rejected', 'unknown']).describe("rejected: Wix's last word on WIX_APP_ID/WIX_APP_SECRET was a refusal"),
    lastRejectedAt: z.date().nullable(),
    lastAcceptedAt: z.date().nullable(),
    rejections: z.number().describe('Refusals of the app credentials this process has seen'),
  }).describe("This process's view of the app's own credentials: a wrong secret fails every installation alike"),
})

declare module 'fastify' {
  interface FastifyRequest {
    installation: Workflow | null
  }
}

/** Admin and app-backend routes on installations. All of /api requires the admin token. */
const installationRoutes: FastifyPluginAsyncZod = async (app) => {
  const { installations, engine } = app

  // Every route on one installation resolves it first (by id or instanceId) and puts its id on
  // every log line of the request.
  app.decorateRequest('installation', null)
  app.addHook('preHandler', async (request, reply) => {
    const { id } = (request.params ?? {}) as { id?: string }
    if (id === undefined) return
    request.installation = await installations.find(id)
    bindWorkflow(request, reply, request.installation.id)
  })
  const target = (request: { installation: Workflow | null }) => request.installation!
  const one = { params: idParams }
  const conflict = { 401: errorReply, 404: errorReply, 409: errorReply }

  app.get('/api/installations', {
    schema: {
      summary: 'List installations, newest first, with filters and keyset pagination',
      description:
        'Newest-updated first; with a created-at filter (createdFrom and/or createdTo), newest-created first, '
        + 'so that any created-at window is read in index order. Ties are broken by id. Follow nextCursor '
        + 'with the same created-at filters (or none) to walk every match exactly once.',
      querystring: listQuery,
      response: { 200: z.object({ items: z.array(installationSchema), nextCursor: z.string().nullable() }), 400: errorReply, 401: errorReply },
    },
    handler: async (request) => {
      const page = await installations.list(request.query)
      return { items: page.items.map(installationView), nextCursor: page.nextCursor }
    },
  })

  app.get('/api/installations/:id', {
    schema: { summary: 'One installation (by id or instanceId) with its whole history', ...one, response: { 200: installationWithHistorySchema, 401: errorReply, 404: errorReply } },
    handler: async (request) => {
      const installation = target(request)
      const view = installationView(installation)
      const [history, attempts, supersedes] = await Promise.all([
        engine.history(installation.id), effectAttempts(app.sql, installation.id),
        view.instanceId ? supersededBy(app.sql, view.instanceId, installation.id) : [],
      ])
      return { ...view, supersedes, history: historyView(history), effectAttempts: attemptsView(attempts) }
    },
  })

  app.post('/api/installations/:id/finish', {
    schema: {
      summary: "The app's setup is done: send APP_FINISHED_CONFIGURATION and finish",
      ...one,
      response: { 200: installationSchema, 202: installationSchema.describe('Still finishing: poll the installation'), ...conflict, 502: errorReply.extend({ installation: installationSchema }) },
    },
    handler: async (request, reply) => {
      const installation = await installations.finish(target(request))
      const view = installationView(installation)
      if (installation.state === 'Finished') return view
      if (installation.statePath === 'SetupIncomplete.finishing') return reply.code(202).send(view)
      if (installation.statePath === 'SetupIncomplete.waiting' && view.lastError) {
        return reply.code(502).send({
          statusCode: 502, code: 'WIX_FINISH_FAILED', error: 'Bad Gateway',
          message: `Wix did not accept the bi-event: ${view.lastError.message}`, installation: view,
        })
      }
      throw new Errors.INSTALLATION_STATE_CONFLICT(`Installation is ${installation.statePath}; only an installation in SetupIncomplete can be finished`)
    },
  })

  app.post('/api/installations/:id/retry', {
    schema: { summary: 'Re-run the effect that exhausted its retries (bi-event, or an unanswered code exchange)', ...one, response: { 200: installationSchema, ...conflict } },
    handler: async (request) => installationView(await installations.retry(target(request))),
  })

  app.post('/api/installations/:id/cancel', {
    schema: { summary: 'End an installation in flight with reason cancelled', ...one, response: { 200: installationSchema, ...conflict } },
    handler: async (request) => installationView(await installations.cancel(target(request))),
  })

  app.post('/api/installations/:id/access-token', {
    schema: {
      summary: "A fresh access token for the app's backend to call Wix APIs",
      ...one,
      response: { 200: z.object({ accessToken: z.string(), expiresAt: z.date() }), ...conflict, 503: errorReply },
    },
    handler: async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return installations.accessToken(target(request))
    },
  })

  app.get('/api/stats', {
    schema: { summary: 'Installations by state, failures by reason, waiting effects and the oldest', response: { 200: stats, 401: errorReply } },
    handler: async () => ({ ...(await installations.stats()), wixCredentials: app.wixCredentials.status() }),
  })

  app.get('/api/jobs/dead', {
    schema: {
      summary: 'Jobs that can never run (dead), newest first, with their reason',
      querystring: z.object({ limit: z.coerce.number({ error: 'must be a number' }).int().min(1).max(500).default(100) }),
      response: {
        200: z.object({
          items: z.array(z.object({
            id: z.string(), workflowId: z.string(), kind: z.string(), name: z.string(), attempts: z.number(),
            reason: z.unknown().describe('What made it dead: a code and a message, never a secret'), diedAt: z.date(),
          })),
        }),
        400: errorReply, 401: errorReply,
      },
    },
    handler: async (request) => ({ items: await installations.deadJobs(request.query.limit) }),
  })
}

export default installationRoutes
