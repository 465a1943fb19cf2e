import { Registry } from 'prom-client';
import type { WixCallInfo } from '../wix/client.ts';
declare module 'fastify' {
    interface FastifyInstance {
        metrics: Metrics;
    }
}
export interface Metrics {
    /** This app's own registry: two apps in one process never share series. */
    registry: Registry;
    wixCall(info: WixCallInfo): void;
}
/**
 * Prometheus metrics at `GET /metrics`. Open, like /healthz and unlike /api/*: scrapers rarely
 * send bearer tokens, and nothing here is secret. Labels are state names, failure reasons, effect
 * and endpoint names, status codes and route patterns (never raw URLs, which can carry a code).
 */
declare const _default: (app: import("fastify").FastifyInstance<import("fastify").RawServerDefault, import("http").IncomingMessage, import("http").ServerResponse<import("http").IncomingMessage>, import("fastify").FastifyBaseLogger, import("fastify").FastifyTypeProviderDefault>) => Promise<void>;
export default _default;
