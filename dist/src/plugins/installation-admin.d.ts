import { type InstallationAdmin } from '../installation/admin.ts';
declare module 'fastify' {
    interface FastifyInstance {
        installations: InstallationAdmin;
    }
}
declare const _default: (app: import("fastify").FastifyInstance<import("fastify").RawServerDefault, import("http").IncomingMessage, import("http").ServerResponse<import("http").IncomingMessage>, import("fastify").FastifyBaseLogger, import("fastify").FastifyTypeProviderDefault>) => Promise<void>;
export default _default;
