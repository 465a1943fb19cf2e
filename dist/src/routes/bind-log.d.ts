import type { FastifyReply, FastifyRequest } from 'fastify';
/** Puts the installation's id on every later log line of this request, the final one included. */
export declare function bindWorkflow(request: FastifyRequest, reply: FastifyReply, workflowId: string): void;
