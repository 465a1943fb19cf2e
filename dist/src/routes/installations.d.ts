import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Workflow } from '../engine/index.ts';
declare module 'fastify' {
    interface FastifyRequest {
        installation: Workflow | null;
    }
}
/** Admin and app-backend routes on installations. All of /api requires the admin token. */
declare const installationRoutes: FastifyPluginAsyncZod;
export default installationRoutes;
