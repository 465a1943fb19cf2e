import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { Errors } from '../errors.ts'
import { findInstallationId } from '../installation/queries.ts'
import { historyView, installationSchema, installationView, installationWithHistorySchema } from '../installation/view.ts'

/** How long the finish route holds the caller while the bi-event goes out. */
const FINISH_WAIT_MS = 10_000

const errorReply = z.object({ statusCode: z.number(), code: z.string(), error: z.string(), message: z.string() })
const idParams = z.object({
  id: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be an installation id or a Wix instanceId'),
})

/** Admin and app-backend routes on one installation. All of /api requires the admin token. */
const installationRoutes: FastifyPluginAsyncZod = async (app) => {
  const { engine, sql } = app

  const load = async (idOrInstanceId: string) => {
    const id = await findInstallationId(sql, idOrInstanceId)
    const installation = id && (await engine.get(id))
    if (!installation) throw new Errors.INSTALLATION_NOT_FOUND(idOrInstanceId)
    return installation
  }

  app.get('/api/installations/:id', {
    schema: {
      summary: 'One installation with its whole history',
      params: idParams,
      response: { 200: installationWithHistorySchema, 401: errorReply, 404: errorReply },
    },
    handler: async (request) => {
      const installation = await load(request.params.id)
      return { ...installationView(installation), history: historyView(await engine.history(installation.id)) }
    },
  })

  app.post('/api/installations/:id/finish', {
    schema: {
      summary: "The app's setup is done: send APP_FINISHED_CONFIGURATION and finish",
      params: idParams,
      response: {
        200: installationSchema,
        202: installationSchema.describe('Still finishing: poll the installation'),
        401: errorReply,
        404: errorReply,
        409: errorReply,
        502: errorReply.extend({ installation: installationSchema }),
      },
    },
    handler: async (request, reply) => {
      let installation = await load(request.params.id)
      if (installation.statePath === 'SetupIncomplete.waiting') {
        const r = await engine.send(installation.id, { type: 'FINISH' }, { source: 'route:finish' })
        installation = r.workflow
      }
      if (installation.statePath === 'SetupIncomplete.finishing') {
        installation = (await engine.waitFor(installation.id, (w) => w.statePath !== 'SetupIncomplete.finishing', FINISH_WAIT_MS))!
      }
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
}

export default installationRoutes
