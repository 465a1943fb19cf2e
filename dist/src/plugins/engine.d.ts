import { type Engine } from '../engine/index.ts';
import { type TokenVault } from '../installation/token-vault.ts';
declare module 'fastify' {
    interface FastifyInstance {
        engine: Engine;
        vault: TokenVault;
    }
}
export interface EngineOptions {
    /** Start the job poll loop (off in tests that drive `engine.runner.tick()` themselves). */
    poll?: boolean;
    pollMs?: number;
    leaseMs?: number;
    owner?: string;
}
/** The durable engine running the installation workflow, and the token vault its effects use. */
declare const _default: import("fastify").FastifyPluginCallback<EngineOptions, import("fastify").RawServerDefault, import("fastify").FastifyTypeProviderDefault, import("fastify").FastifyBaseLogger>;
export default _default;
