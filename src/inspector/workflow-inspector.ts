import { createWebSocketInspector } from '@statelyai/inspect'
import type { StateValue } from 'xstate'
import type { Workflow } from '../engine/index.ts'
import type { TransitionStep } from '../engine/engine.ts'
import { redactEvent } from '../engine/redact.ts'

/** Context keys that would be credentials; the installation context holds none, this is a guard. */
const SECRET_KEY = /secret|token|password|code$|^code|authorization/i

const stripSecrets = (context: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(context).filter(([key]) => !SECRET_KEY.test(key) || key === 'stateHash'))

/** `SetupIncomplete.finishing` → `{ SetupIncomplete: 'finishing' }`, as the inspector draws it. */
export function valueOf(path: string): StateValue {
  const [head, ...rest] = path.split('.')
  return rest.length ? { [head!]: valueOf(rest.join('.')) } : head!
}

/** One inspector actor per workflow, named after it, the same in every process and in replays. */
export const actorId = (w: { machine: string; id: string }) => `${w.machine}:${w.id}`

export interface WorkflowInspector {
  /** Sends the steps of one committed transition (announcing the workflow the first time). */
  record(workflow: Pick<Workflow, 'id' | 'machine' | 'context' | 'status'>, steps: TransitionStep[]): void
  /** Whether the inspector's socket is open (everything recorded so far has then been sent). */
  isOpen(): boolean
  stop(): void
}

/**
 * Sends engine transitions to the Stately inspector over its WebSocket protocol. Events are sent
 * as history stores them (secrets redacted); snapshots carry value, status and context.
 */
export function createWorkflowInspector(url: string, definitions: Record<string, string | undefined> = {}): WorkflowInspector {
  const inspector = createWebSocketInspector({
    url,
    sanitizeEvent: (event) => redactEvent(event) as typeof event,
    sanitizeContext: (context) => stripSecrets(context as Record<string, unknown>),
    // Bounded: with no inspector listening, the oldest events are dropped, memory is not.
    maxDeferredEvents: 1_000,
  })
  const announced = new Set<string>()

  return {
    record(workflow, steps) {
      const id = actorId(workflow)
      const context = stripSecrets(workflow.context)
      if (!announced.has(id)) {
        if (announced.size > 10_000) announced.clear()
        announced.add(id)
        const first = steps[0]
        inspector.actor(id, { value: valueOf(first?.from ?? first?.to ?? ''), context, status: 'active' }, { definition: definitions[workflow.machine] })
      }
      steps.forEach((step, i) => {
        const event = { ...step.data, type: step.event }
        inspector.event(id, event)
        const last = i === steps.length - 1
        inspector.snapshot(id, { value: valueOf(step.to), context, status: last ? workflow.status : 'active' }, { event })
      })
    },
    // The adapter keeps its socket state to itself; this reads it without changing it.
    isOpen: () => (inspector.adapter as unknown as { status: string }).status === 'open',
    stop: () => inspector.stop(),
  }
}
