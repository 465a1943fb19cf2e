import Fastify, { type FastifyServerOptions } from 'fastify';
import { type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Sql } from 'postgres';
import { type Config } from './config.ts';
import { type WixInstallOptions } from './options.ts';
import { type EngineOptions } from './plugins/engine.ts';
declare module 'fastify' {
    interface FastifyInstance {
        routeList: {
            method: string;
            url: string;
        }[];
    }
}
/** What the service is built from: a loaded configuration, plus what tests and embedders inject. */
export interface ServiceOptions {
    config: Config;
    /** A database client the caller owns; else one is opened from `databaseUrl`. */
    sql?: Sql;
    databaseMax?: number;
    now?: () => Date;
    engine?: EngineOptions;
    /** The service owns the whole server: it answers unknown URLs and serves the `/` landing page. */
    standalone?: boolean;
}
export declare const wixInstallEngine: Fastify.FastifyPluginAsync<WixInstallOptions & Partial<ServiceOptions> & {
    prefix?: string;
}>;
export type AppOptions = ServiceOptions & {
    logger?: FastifyServerOptions['logger'];
};
/** Builds the service without listening: the server and the tests both start from here. */
export declare function buildApp(opts: AppOptions): Promise<Fastify.FastifyInstance<Fastify.RawServerDefault, import("http").IncomingMessage, import("http").ServerResponse<import("http").IncomingMessage>, Fastify.FastifyBaseLogger, ZodTypeProvider>>;
export type App = Awaited<ReturnType<typeof buildApp>>;
