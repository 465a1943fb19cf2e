import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'

const health = z.object({ status: z.enum(['ok', 'error']), database: z.enum(['up', 'down']) })

/** Liveness plus database reachability, for load balancers and orchestrators. */
const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get('/healthz', {
    schema: { response: { 200: health, 503: health } },
    handler: async (request, reply) => {
      try {
        // Bounded: a load balancer's probe must get an answer, not a hang, while the database is away.
        await Promise.race([
          app.sql`select 1`,
          new Promise((_, reject) => setTimeout(() => reject(new Error('database check timed out')), 2_000).unref()),
        ])
        return { status: 'ok' as const, database: 'up' as const }
      } catch (err) {
        request.log.warn({ err: { message: (err as Error).message } }, 'database unreachable')
        return reply.code(503).header('retry-after', '5').send({ status: 'error' as const, database: 'down' as const })
      }
    },
  })
}

export default healthRoutes
