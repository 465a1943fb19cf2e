import type { StateValue } from 'xstate'

/**
 * The types the engine's modules share, apart from the modules that use them: each module
 * imports from here, never from a sibling that imports it back.
 */

/** What the engine stores of a machine snapshot: no children (their input can hold secrets). */
export interface PersistedState {
  value: StateValue
  context: Record<string, unknown>
  status: 'active' | 'done' | 'error' | 'stopped'
  output?: unknown
}

export interface RetryPolicy {
  /** Runs of one effect before its failure goes to the machine. */
  maxAttempts: number
  baseDelayMs: number
  maxDelayMs: number
}

export interface Logger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}
