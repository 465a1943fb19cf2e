import Fastify, { type FastifyServerOptions } from 'fastify';
import { type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Sql } from 'postgres';
import { type Config } from './config.ts';
import { type EngineOptions } from './plugins/engine.ts';
declare module 'fastify' {
    interface FastifyInstance {
        routeList: {
            method: string;
            url: string;
        }[];
    }
}
export interface AppOptions {
    config: Config;
    /** A database client the caller owns; else one is opened from `databaseUrl`. */
    sql?: Sql;
    databaseUrl?: string;
    databaseMax?: number;
    now?: () => Date;
    engine?: EngineOptions;
    logger?: FastifyServerOptions['logger'];
}
/** Builds the service without listening: the server and the tests both start from here. */
export declare function buildApp(opts: AppOptions): Promise<Fastify.FastifyInstance<Fastify.RawServerDefault, import("http").IncomingMessage, import("http").ServerResponse<import("http").IncomingMessage>, Fastify.FastifyBaseLogger, ZodTypeProvider>>;
export type App = Awaited<ReturnType<typeof buildApp>>;
