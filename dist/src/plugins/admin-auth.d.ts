import type { FastifyInstance } from 'fastify';
/**
 * Requires `Authorization: Bearer <ADMIN_TOKEN>` on every route of the scope it is added to,
 * compared in constant time. Added as a hook on the /api scope, so no route there can skip it.
 */
export declare function requireAdmin(app: FastifyInstance): void;
