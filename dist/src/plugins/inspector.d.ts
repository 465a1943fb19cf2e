/**
 * With INSPECT set, every transition this process commits goes to the Stately inspector:
 * `INSPECT=ws://host:port` sends to a running inspector server, `INSPECT=true` starts one here
 * on :8080 (or uses the one already there). An absent inspector never stops the service: one
 * warning, and transitions are dropped beyond a bounded buffer until it answers.
 */
declare const _default: (app: import("fastify").FastifyInstance<import("fastify").RawServerDefault, import("http").IncomingMessage, import("http").ServerResponse<import("http").IncomingMessage>, import("fastify").FastifyBaseLogger, import("fastify").FastifyTypeProviderDefault>) => Promise<void>;
export default _default;
