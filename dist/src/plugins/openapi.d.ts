/**
 * The OpenAPI document at /docs/json and a browsable UI at /docs, generated from the same zod
 * schemas that validate each route. The UI's assets are served from node_modules: no CDN.
 * Must be registered before the routes it describes.
 */
declare const _default: (app: import("fastify").FastifyInstance<import("fastify").RawServerDefault, import("http").IncomingMessage, import("http").ServerResponse<import("http").IncomingMessage>, import("fastify").FastifyBaseLogger, import("fastify").FastifyTypeProviderDefault>) => Promise<void>;
export default _default;
