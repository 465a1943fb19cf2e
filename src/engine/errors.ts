/** Errors the engine raises; each has a stable code for logs, metrics and HTTP answers. */
export class EngineError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly statusCode: number,
  ) {
    super(message)
    this.name = 'EngineError'
  }
}

export const workflowNotFound = (id: string) =>
  new EngineError('WORKFLOW_NOT_FOUND', `No workflow ${id}`, 404)

export const unknownMachine = (name: string) =>
  new EngineError('UNKNOWN_MACHINE', `No machine named ${name} is registered with this engine`, 500)

export const machineVersionUnsupported = (name: string, stored: number, known: number) =>
  new EngineError(
    'MACHINE_VERSION_UNSUPPORTED',
    `Stored ${name} snapshot has machine version ${stored}; this code runs version ${known} and has no migration for it`,
    409,
  )

export const writeQueueFull = (max: number) =>
  new EngineError('WRITE_QUEUE_FULL', `The database is not keeping up: ${max} writes are already queued in this process`, 503)

export const writeContention = (id: string) =>
  new EngineError('WRITE_CONTENTION', `Gave up writing workflow ${id}: too many concurrent writers`, 503)

/** An effect's failure as stored and shown: code and message only, never a credential. */
export interface SafeError {
  code: string
  message: string
  retryable?: boolean
  retryAfterMs?: number
  status?: number
  wixRequestId?: string
  attempts?: number
}

export function toSafeError(error: unknown): SafeError {
  const e = error as { toJSON?: () => unknown; code?: unknown; message?: unknown; retryable?: unknown } | null
  if (e && typeof e.toJSON === 'function') return e.toJSON() as SafeError
  return {
    code: typeof e?.code === 'string' ? e.code : 'EFFECT_FAILED',
    message: typeof e?.message === 'string' ? e.message.slice(0, 300) : String(error).slice(0, 300),
    ...(typeof e?.retryable === 'boolean' && { retryable: e.retryable }),
  }
}
