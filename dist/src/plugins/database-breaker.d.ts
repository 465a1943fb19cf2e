declare module 'fastify' {
    interface FastifyInstance {
        /** Called when a query finds the database unreachable. */
        databaseDown(): void;
    }
}
/**
 * Once a query finds Postgres gone, every request that would need it gets a 503 at once instead
 * of queueing behind connection attempts; a probe each second notices when it is back.
 */
declare const _default: (app: import("fastify").FastifyInstance<import("fastify").RawServerDefault, import("http").IncomingMessage, import("http").ServerResponse<import("http").IncomingMessage>, import("fastify").FastifyBaseLogger, import("fastify").FastifyTypeProviderDefault>) => Promise<void>;
export default _default;
