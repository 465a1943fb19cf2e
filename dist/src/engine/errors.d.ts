/** Errors the engine raises; each has a stable code for logs, metrics and HTTP answers. */
export declare class EngineError extends Error {
    readonly code: string;
    readonly statusCode: number;
    constructor(code: string, message: string, statusCode: number);
}
export declare const workflowNotFound: (id: string) => EngineError;
export declare const unknownMachine: (name: string) => EngineError;
export declare const machineVersionUnsupported: (name: string, stored: number, known: number) => EngineError;
export declare const writeContention: (id: string) => EngineError;
/** An effect's failure as stored and shown: code and message only, never a credential. */
export interface SafeError {
    code: string;
    message: string;
    retryable?: boolean;
    retryAfterMs?: number;
    status?: number;
    wixRequestId?: string;
    attempts?: number;
}
export declare function toSafeError(error: unknown): SafeError;
