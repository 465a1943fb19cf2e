import type { EventObject } from 'xstate'
import type { WorkflowDefinition } from './definition.ts'
import { stateName, statePath } from './snapshot.ts'
import type { HistoryEntry, WorkflowRow } from './store.ts'
import type { PersistedState } from './types.ts'

/** A workflow as callers see it: the persisted state and its bookkeeping, no secrets. */
export interface Workflow {
  id: string
  machine: string
  machineVersion: number
  key: string | null
  state: string
  statePath: string
  reason: string | null
  status: PersistedState['status']
  context: Record<string, unknown>
  version: number
  createdAt: Date
  updatedAt: Date
}

/** One accepted step, as its history row records it (`from` is null for the start). */
export interface TransitionStep {
  event: string
  from: string | null
  to: string
  /** The event as history stores it: secret fields redacted. */
  data: Record<string, unknown>
  /** The context as it stands after this step (a commit of several steps has one per step). */
  context?: Record<string, unknown>
}

export type TransitionListener = (workflow: Workflow, steps: TransitionStep[]) => void

export type SendResult = { accepted: true; workflow: Workflow } | { accepted: false; workflow: Workflow }

/** Any event: its payload is the machine's business; secret fields are redacted in history. */
export type AnyEvent = EventObject & Record<string, unknown>

/** A stored row as callers see it. */
export const toWorkflow = (row: WorkflowRow): Workflow => ({
  id: row.id,
  machine: row.machine,
  machineVersion: row.machine_version,
  key: row.key,
  state: row.state,
  statePath: statePath(row.snapshot.value),
  reason: row.reason,
  status: row.snapshot.status,
  context: row.snapshot.context,
  version: row.version,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
})

/** `current` as it stands after a step to `state`, at `version`. */
export const workflowAfter = (current: Workflow, def: WorkflowDefinition, state: PersistedState, version: number, at: Date): Workflow => ({
  ...current, ...def.project(state), machineVersion: def.version, state: stateName(state.value), statePath: statePath(state.value),
  status: state.status, context: state.context, version, updatedAt: at,
})

/** A commit's history rows as its listeners hear them, each with the context it left. */
export const stepsOf = (history: Omit<HistoryEntry, 'at'>[], contexts: Record<string, unknown>[]): TransitionStep[] =>
  history.map((h, i) => ({ event: h.event_type, from: h.from_state, to: h.to_state, data: h.event, context: contexts[i] }))
