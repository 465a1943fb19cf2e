import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
/** Liveness plus database reachability, for load balancers and orchestrators. */
declare const healthRoutes: FastifyPluginAsyncZod;
export default healthRoutes;
