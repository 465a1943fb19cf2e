import { createInspector } from '@statelyai/inspect'
import type { AnyStateMachine, StateValue } from 'xstate'
import type { Workflow } from '../engine/index.ts'
import type { TransitionStep } from '../engine/engine.ts'
import { REDACTED, redactEvent } from '../engine/redact.ts'
import { createSocketAdapter, type SocketAdapterOptions } from './socket-adapter.ts'

/**
 * Keys whose values would be credentials, at any depth. Contexts and stored events hold none by
 * design (`redactEvent` already ran on every event); this is the inspector's own guard.
 * `code`/`state` only as whole keys: `codeTtlMs` and `stateHash` are no secrets.
 */
const SECRET_KEY = /^(code|state)$|secret|token|password|authori[sz]ation|cookie|credential/i

export function stripSecrets<T>(value: T, depth = 0): T {
  if (depth > 20 || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map((v) => stripSecrets(v, depth + 1)) as T
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) && v != null ? REDACTED : stripSecrets(v, depth + 1)]),
  ) as T
}

/** `SetupIncomplete.finishing` → `{ SetupIncomplete: 'finishing' }`, as the inspector draws it. */
export function valueOf(path: string): StateValue {
  const [head, ...rest] = path.split('.')
  return rest.length ? { [head!]: valueOf(rest.join('.')) } : head!
}

/** One inspector actor per workflow, named after it, the same in every process and in replays. */
export const actorId = (w: { machine: string; id: string }) => `${w.machine}:${w.id}`

export interface WorkflowInspectorOptions extends Omit<SocketAdapterOptions, 'url'> {
  /** The machine a workflow runs: its config goes with the actor, so the inspector draws it. */
  machine?: (name: string) => AnyStateMachine | undefined
}

export type InspectedWorkflow = Pick<Workflow, 'id' | 'machine' | 'context' | 'status'>

/**
 * Sends engine transitions to the Stately inspector over its WebSocket protocol: each workflow is
 * announced once (`@xstate.actor`, with its machine), then every step is an `@xstate.event` and
 * the `@xstate.snapshot` after it. Events go as history stores them; secrets are stripped again.
 */
export function createWorkflowInspector(url: string, o: WorkflowInspectorOptions = {}) {
  const adapter = createSocketAdapter({ ...o, url })
  const inspector = createInspector(adapter, {
    sanitizeEvent: (event) => stripSecrets(redactEvent(event)) as typeof event,
    sanitizeContext: (context) => stripSecrets(context),
  })
  inspector.start()
  const announced = new Set<string>()

  const machineOf = (name: string) => {
    try {
      return o.machine?.(name)
    } catch {
      return undefined
    }
  }

  return {
    url,
    /** Sends the steps of one committed transition, announcing the workflow the first time. */
    record(workflow: InspectedWorkflow, steps: TransitionStep[]) {
      const id = actorId(workflow)
      const context = stripSecrets(workflow.context)
      if (!announced.has(id)) {
        // Bounded: an actor seen again after a clear is announced again, which the inspector merges.
        if (announced.size >= 10_000) announced.clear()
        announced.add(id)
        const first = steps[0]
        const machine = machineOf(workflow.machine)
        // The library reads the definition off `actorRef.logic.config`, as XState's own actors send it.
        const ref = (machine ? { sessionId: id, logic: machine } : id) as Parameters<typeof inspector.actor>[0]
        inspector.actor(ref, { value: valueOf(first?.from ?? first?.to ?? ''), context, status: 'active' })
      }
      steps.forEach((step, i) => {
        const event = { ...step.data, type: step.event }
        inspector.event(id, event)
        const last = i === steps.length - 1
        inspector.snapshot(id, { value: valueOf(step.to), context, status: last ? workflow.status : 'active' }, { event })
      })
    },
    whenOpen: adapter.whenOpen,
    dropped: adapter.dropped,
    stop: adapter.stop,
  }
}

export type WorkflowInspector = ReturnType<typeof createWorkflowInspector>
