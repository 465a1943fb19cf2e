import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
declare const machineRoutes: FastifyPluginAsyncZod;
export default machineRoutes;
