import type { AnyStateMachine } from 'xstate'
import { undurableConstructs } from './snapshot.ts'
import type { PersistedState, RetryPolicy } from './types.ts'

export type { PersistedState, RetryPolicy } from './types.ts'

/** A machine the engine can run durably. The engine knows nothing else about it. */
export interface WorkflowDefinition {
  /** Stored with every row; stable forever. */
  name: string
  /** Stored with every snapshot: a changed machine migrates or refuses old snapshots. */
  version: number
  /** The machine with its effects bound (`machine.provide({ actors })`). */
  machine: AnyStateMachine
  /** The columns admins filter by: a business key and a failure reason. */
  project(state: PersistedState): { key: string | null; reason: string | null }
  /** Upgrades a snapshot stored by an older version; throw to refuse it. */
  migrate?(state: PersistedState, fromVersion: number): PersistedState
  effectTimeoutMs?: number
  retry?: Partial<RetryPolicy>
}

/**
 * Checks that the engine can run `definition.machine` durably, and refuses it at once, naming
 * each state and construct, if not: better a clear error at start than an effect silently lost.
 */
export function defineWorkflow(definition: WorkflowDefinition): WorkflowDefinition {
  const problems = undurableConstructs(definition.machine)
  if (problems.length) {
    throw new Error(`Workflow ${definition.name} cannot run durably:\n  - ${problems.join('\n  - ')}`)
  }
  return definition
}
