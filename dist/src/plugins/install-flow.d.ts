import { type InstallFlow } from '../installation/flow.ts';
declare module 'fastify' {
    interface FastifyInstance {
        installFlow: InstallFlow;
    }
}
declare const _default: (app: import("fastify").FastifyInstance<import("fastify").RawServerDefault, import("http").IncomingMessage, import("http").ServerResponse<import("http").IncomingMessage>, import("fastify").FastifyBaseLogger, import("fastify").FastifyTypeProviderDefault>) => Promise<void>;
export default _default;
