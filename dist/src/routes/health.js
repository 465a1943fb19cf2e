import { z } from 'zod';
const health = z.object({ status: z.enum(['ok', 'error']), database: z.enum(['up', 'down']) });
/** Liveness plus database reachability, for load balancers and orchestrators. */
const healthRoutes = async (app) => {
    app.get('/healthz', {
        schema: { response: { 200: health, 503: health } },
        handler: async (request, reply) => {
            try {
                // Bounded: a load balancer's probe must get an answer, not a hang, while the database is away.
                await Promise.race([
                    app.sql `select 1`,
                    new Promise((_, reject) => setTimeout(() => reject(new Error('database check timed out')), 2_000).unref()),
                ]);
                return { status: 'ok', database: 'up' };
            }
            catch (err) {
                request.log.warn({ err: { message: err.message } }, 'database unreachable');
                return reply.code(503).header('retry-after', '5').send({ status: 'error', database: 'down' });
            }
        },
    });
};
export default healthRoutes;
