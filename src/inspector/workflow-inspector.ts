import type { StatelyInspectionEvent } from '@statelyai/inspect'
import type { AnyStateMachine } from 'xstate'
import { valueOf, type Workflow } from '../engine/index.ts'
import { redactFields, shape, workflowActor, type InspectedStep, type InspectedWorkflow, type LiveWorkflow } from './actor-messages.ts'
import { createEffectActors } from './effect-actors.ts'
import { createSocketAdapter, type SocketAdapterOptions } from './socket-adapter.ts'

export { childId, redactFields } from './actor-messages.ts'
export type { InspectedStep, InspectedWorkflow, LiveWorkflow } from './actor-messages.ts'

/** The protocol version `@statelyai/inspect` stamps on its messages (its `_version`). */
export const PROTOCOL_VERSION = '0.7.2'
/**
 * The inspector's local server replays its last 200 messages to a viewer that connects: an actor
 * announced within the last 100 messages is always among them. Past that (or after a while), its
 * next step announces it again; the inspector merges a repeated announcement into the same actor.
 */
const REANNOUNCE_AFTER_MESSAGES = 100
const REANNOUNCE_AFTER_MS = 5 * 60_000

/** One inspector actor per workflow, named after it, the same in every process and in replays. */
export const actorId = (w: { machine: string; id: string }) => `${w.machine}:${w.id}`

export interface WorkflowInspectorOptions extends Omit<SocketAdapterOptions, 'url'> {
  /** The machine a workflow runs: its config goes with the actor, so the inspector draws it. */
  machine?: (name: string) => AnyStateMachine | undefined
  /** The clock of live steps (replays stamp each step with when it happened). */
  now?: () => number
}

/**
 * Sends engine transitions to the Stately inspector over its WebSocket protocol, as a live actor
 * reads under `createWebSocketInspector`: each workflow is an actor (`@xstate.actor` with its machine,
 * announced again on a new connection or when the last announcement has aged), each step an
 * `@xstate.event` and the `@xstate.snapshot` after it (with `rootId`, `tags`, `children`), and each
 * effect a child actor (`parentId`) with its input, done or failed with the event that reports it.
 */
export function createWorkflowInspector(url: string, o: WorkflowInspectorOptions = {}) {
  const announced = new Map<string, { message: number; at: number }>()
  let sent = 0
  const adapter = createSocketAdapter({
    ...o,
    url,
    // What a closed connection saw is gone with it: announce every actor again on the next one.
    onDown: (reason) => {
      announced.clear()
      o.onDown?.(reason)
    },
  })
  adapter.start()
  const now = o.now ?? Date.now

  const machineOf = (name: string) => {
    try {
      return o.machine?.(name)
    } catch {
      return undefined
    }
  }
  const send = (message: Record<string, unknown>) => {
    sent++
    adapter.send({ ...message, _version: PROTOCOL_VERSION } as unknown as StatelyInspectionEvent)
  }
  const { announceRunning, effectEnded, effectsMoved } = createEffectActors(send)

  /**
   * Announces a workflow in the state at `path`, then the effects running there: an inspector is told
   * of every actor before any message about it. A workflow that has just started (`started`) runs
   * none yet: the step that starts them announces them.
   */
  function announce(id: string, w: InspectedWorkflow, machine: AnyStateMachine | undefined, path: string, at: number, started = false) {
    announced.set(id, { message: sent, at: now() })
    send(workflowActor(id, w, machine, path, at, started))
    if (started) return
    announceRunning(id, w, machine, path, at)
  }

  return {
    url,
    /** Sends the steps of one committed transition, announcing the workflow when the inspector may not know it. */
    record(workflow: InspectedWorkflow, steps: InspectedStep[]) {
      const id = actorId(workflow)
      const machine = machineOf(workflow.machine)
      const first = steps[0]
      const last = announced.get(id)
      if (!last || sent - last.message > REANNOUNCE_AFTER_MESSAGES || now() - last.at > REANNOUNCE_AFTER_MS) {
        if (announced.size >= 10_000) announced.clear()
        const started = first !== undefined && first.from === null
        announce(id, workflow, machine, first?.from ?? first?.to ?? '', first?.at?.getTime() ?? now(), started)
      }
      steps.forEach((step, i) => {
        const at = String(step.at?.getTime() ?? now())
        const event = redactFields({ ...step.data, type: step.event })
        const context = step.context ?? workflow.context
        const answered = effectEnded(id, step, at)
        // History's numbering: unique per workflow, and the same live and in a replay.
        const seq = step.seq ?? (workflow.version === undefined ? undefined : workflow.version - steps.length + 1 + i)
        const eventId = seq === undefined ? `${id}#${at}#${sent}` : `${id}#${seq}`
        send({ type: '@xstate.event', sessionId: id, rootId: id, sourceId: answered, event, id: eventId,
          createdAt: at })
        effectsMoved(id, machine, step, context, at, answered)
        const status = i === steps.length - 1 ? workflow.status : 'active'
        send({
          type: '@xstate.snapshot', sessionId: id, rootId: id, id: null, createdAt: at, event,
          snapshot: { value: valueOf(step.to), context, status, ...shape(id, machine, step.to) },
        })
      })
    },
    /**
     * Announces each workflow as it stands now, with its running effects, unless a step already did
     * on this connection: after a restart, a viewer sees what is in flight before it next moves.
     */
    announceLive(workflows: LiveWorkflow[]) {
      for (const w of workflows) {
        const id = actorId(w)
        if (!announced.has(id)) announce(id, w, machineOf(w.machine), w.statePath, w.createdAt.getTime())
      }
    },
    /** The next step of this workflow announces it again (a replay starts its actor afresh). */
    forget(workflow: Pick<Workflow, 'id' | 'machine'>) {
      announced.delete(actorId(workflow))
    },
    whenOpen: adapter.whenOpen,
    dropped: adapter.dropped,
    stop: adapter.stop,
  }
}

export type WorkflowInspector = ReturnType<typeof createWorkflowInspector>
