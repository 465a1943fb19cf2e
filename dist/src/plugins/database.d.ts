import type { Sql } from 'postgres';
declare module 'fastify' {
    interface FastifyInstance {
        sql: Sql;
    }
}
export interface DatabaseOptions {
    /** A client the caller owns (tests, an embedding app); else one is opened from `url`. */
    sql?: Sql;
    url?: string;
    max?: number;
    migrate?: boolean;
}
/** The Postgres client, migrated before anything uses it; closed with the app if we opened it. */
declare const _default: import("fastify").FastifyPluginCallback<DatabaseOptions, import("fastify").RawServerDefault, import("fastify").FastifyTypeProviderDefault, import("fastify").FastifyBaseLogger>;
export default _default;
