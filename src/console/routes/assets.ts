import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { CONSOLE_CSS, CONSOLE_JS } from '../layout.ts'

/** The console's stylesheet and script, served from this origin (its CSP loads nothing from elsewhere). */
const assetRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get('/console/assets/console.css', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/css; charset=utf-8').send(CONSOLE_CSS))
  app.get('/console/assets/console.js', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').send(CONSOLE_JS))
}

export default assetRoutes
