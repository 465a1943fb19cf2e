import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
/**
 * The default POST_INSTALL_URL lands here: a page that says the app is installed, so a browser
 * never ends a successful install on a 404. Apps point POST_INSTALL_URL at their own page.
 */
declare const homeRoutes: FastifyPluginAsyncZod;
export default homeRoutes;
