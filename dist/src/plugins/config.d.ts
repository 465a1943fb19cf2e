import type { Config } from '../config.ts';
declare module 'fastify' {
    interface FastifyInstance {
        config: Config;
        /** The service's clock; tests replace it to move time instead of waiting. */
        now: () => Date;
    }
}
declare const _default: import("fastify").FastifyPluginCallback<{
    config: Config;
    now?: () => Date;
}, import("fastify").RawServerDefault, import("fastify").FastifyTypeProviderDefault, import("fastify").FastifyBaseLogger>;
export default _default;
