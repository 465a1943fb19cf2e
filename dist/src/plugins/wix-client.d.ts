import { createWixClient } from '../wix/client.ts';
declare module 'fastify' {
    interface FastifyInstance {
        wix: ReturnType<typeof createWixClient>;
    }
}
/** The Wix API client, with its connection pool closed on shutdown. */
declare const _default: (app: import("fastify").FastifyInstance<import("fastify").RawServerDefault, import("http").IncomingMessage, import("http").ServerResponse<import("http").IncomingMessage>, import("fastify").FastifyBaseLogger, import("fastify").FastifyTypeProviderDefault>) => Promise<void>;
export default _default;
