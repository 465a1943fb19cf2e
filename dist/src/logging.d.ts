import type { PinoLoggerOptions } from 'fastify/types/logger.js';
/** A URL as logged: secret query values replaced, everything else kept for debugging. */
export declare function redactUrl(url: string): string;
/** JSON lines, a request id on each, secrets never written. */
export declare function loggerOptions(level: string): PinoLoggerOptions;
