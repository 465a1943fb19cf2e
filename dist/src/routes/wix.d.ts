import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
/** The three browser-facing steps: App URL, platform-started install, Redirect URL. */
declare const wixRoutes: FastifyPluginAsyncZod;
export default wixRoutes;
