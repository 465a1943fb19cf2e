import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { idParams } from '../../routes/admin-schemas.ts'
import { ConsoleErrors } from '../errors.ts'
import { ACTIONS, DONE_WORDS } from './actions.ts'
import { signedIn } from './guards.ts'
import { installationRenderer } from './render-installation.ts'

const doneQuery = z.object({ done: z.enum([...ACTIONS, 'inspect']).optional() })

/** An installation's page, and the version its open page polls to swap in what moved. */
const installationRoutes: FastifyPluginAsyncZod = async (app) => {
  const { config, installations } = app
  const renderInstallation = installationRenderer(app)

  app.get('/console/installations/:id', { schema: { hide: true, params: idParams, querystring: doneQuery } },
    async (request, reply) => {
      const session = signedIn(request, reply, config.appName)
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
}

export default installationRoutes
