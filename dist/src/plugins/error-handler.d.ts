/**
 * One error handler: 4xx answers show their named code and message; 5xx answers show neither,
 * and are logged with the error (which by construction carries no secret).
 */
declare const _default: import("fastify").FastifyPluginCallback<{
    notFound?: boolean;
}, import("fastify").RawServerDefault, import("fastify").FastifyTypeProviderDefault, import("fastify").FastifyBaseLogger>;
export default _default;
