/** Errors the engine raises; each has a stable code for logs, metrics and HTTP answers. */
export class EngineError extends Error {
    code;
    statusCode;
    constructor(code, message, statusCode) {
        super(message);
        this.code = code;
        this.statusCode = statusCode;
        this.name = 'EngineError';
    }
}
export const workflowNotFound = (id) => new EngineError('WORKFLOW_NOT_FOUND', `No workflow ${id}`, 404);
export const unknownMachine = (name) => new EngineError('UNKNOWN_MACHINE', `No machine named ${name} is registered with this engine`, 500);
export const machineVersionUnsupported = (name, stored, known) => new EngineError('MACHINE_VERSION_UNSUPPORTED', `Stored ${name} snapshot has machine version ${stored}; this code runs version ${known} and has no migration for it`, 409);
export const writeContention = (id) => new EngineError('WRITE_CONTENTION', `Gave up writing workflow ${id}: too many concurrent writers`, 503);
export function toSafeError(error) {
    const e = error;
    if (e && typeof e.toJSON === 'function')
        return e.toJSON();
    return {
        code: typeof e?.code === 'string' ? e.code : 'EFFECT_FAILED',
        message: typeof e?.message === 'string' ? e.message.slice(0, 300) : String(error).slice(0, 300),
        ...(typeof e?.retryable === 'boolean' && { retryable: e.retryable }),
    };
}
