import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { htmlPage } from './html.ts'

/**
 * The default POST_INSTALL_URL lands here: a page that says the app is installed, so a browser
 * never ends a successful install on a 404. Apps point POST_INSTALL_URL at their own page.
 */
const homeRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get('/', {
    schema: { hide: true, querystring: z.object({ instanceId: z.string().max(64).optional() }) },
    handler: async (request, reply) => {
      const { instanceId } = request.query
      const { appName } = app.config
      reply.type('text/html; charset=utf-8')
      if (instanceId) {
        const done = `${appName} is now installed on your site. You can close this window and go back to your Wix `
          + 'dashboard.'
        return htmlPage('The app is installed', done, { appName })
      }
      const hint = app.config.sandbox ? ` Start a sandbox install at ${app.config.publicUrl}/wix/app-url?token=sandbox-install` : ''
      return htmlPage(appName, `The Wix installation service is running.${hint}`)
    },
  })
}

export default homeRoutes
