import type { StatelyInspectionEvent } from '@statelyai/inspect'
import type { AnyStateMachine, AnyStateNode, EventObject } from 'xstate'
import { redactEvent, type TransitionStep, valueOf, type Workflow } from '../engine/index.ts'
import { createSocketAdapter, type SocketAdapterOptions } from './socket-adapter.ts'

/** The protocol version `@statelyai/inspect` stamps on its messages (its `_version`). */
export const PROTOCOL_VERSION = '0.7.2'
/**
 * The inspector's local server replays its last 200 messages to a viewer that connects: an actor
 * announced within the last 100 messages is always among them. Past that (or after a while), its
 * next step announces it again; the inspector merges a repeated announcement into the same actor.
 */
const REANNOUNCE_AFTER_MESSAGES = 100
const REANNOUNCE_AFTER_MS = 5 * 60_000

/**
 * Redaction by what a field is. Events are the machine's events, whose secret fields (the OAuth
 * `code` of a callback) `redactEvent` names; an effect's input is redacted the same way. Contexts
 * hold no secret by design and nested values (an error's `code: 'WIX_REJECTED'`) are shown whole.
 */
export const redactFields = (value: Record<string, unknown>) => redactEvent(value as EventObject)

/** One inspector actor per workflow, named after it, the same in every process and in replays. */
export const actorId = (w: { machine: string; id: string }) => `${w.machine}:${w.id}`
/** An effect of a workflow, as a child actor of it. */
export const childId = (parent: string, invokeId: string) => `${parent}/${invokeId}`

export interface WorkflowInspectorOptions extends Omit<SocketAdapterOptions, 'url'> {
  /** The machine a workflow runs: its config goes with the actor, so the inspector draws it. */
  machine?: (name: string) => AnyStateMachine | undefined
  /** The clock of live steps (replays stamp each step with when it happened). */
  now?: () => number
}

/** `version`: the workflow's after the steps recorded with it, which numbers them as history does. */
export type InspectedWorkflow = Pick<Workflow, 'id' | 'machine' | 'context' | 'status'> & Partial<Pick<Workflow, 'version'>>
/** A step to inspect; `at` is when it happened (a replay's), else now; `seq` its number in history. */
export type InspectedStep = TransitionStep & { at?: Date; seq?: number }
/** A workflow as it stands, to announce to an inspector that may not know it. */
export type LiveWorkflow = InspectedWorkflow & Pick<Workflow, 'statePath' | 'createdAt'>

const ancestors = (path: string | null) => (path ? path.split('.').map((_, i, p) => p.slice(0, i + 1).join('.')) : [])

function definitionOf(machine: AnyStateMachine): string | undefined {
  try {
    // As the library sends it: the machine's config, functions by name.
    return JSON.stringify(machine.config, (_k, v: unknown) => (typeof v === 'function' ? { type: v.name } : v))
  } catch {
    return undefined
  }
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
  // The announcement of each running effect, sent again whenever its workflow is announced again.
  const effects = new Map<string, Record<string, unknown>>()
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
  const nodesOf = (machine: AnyStateMachine | undefined, path: string | null): AnyStateNode[] => {
    if (!machine) return []
    return ancestors(path).flatMap((p) => {
      try {
        return [machine.getStateNodeById(`${machine.id}.${p}`)]
      } catch {
        return []
      }
    })
  }

  /**
   * Announces a workflow in the state at `path`, then the effects running there: an inspector is told
   * of every actor before any message about it. A workflow that has just started (`started`) runs
   * none yet: the step that starts them announces them.
   */
  function announce(id: string, w: InspectedWorkflow, machine: AnyStateMachine | undefined, path: string, at: number, started = false) {
    announced.set(id, { message: sent, at: now() })
    const { tags, children } = shape(id, machine, path)
    send({
      type: '@xstate.actor',
      name: machine?.id ?? w.machine,
      sessionId: id,
      createdAt: String(at),
      rootId: id,
      parentId: undefined,
      id: null,
      definition: machine ? definitionOf(machine) : undefined,
      snapshot: { value: valueOf(path), context: w.context, status: 'active', tags, children: started ? {} : children },
    })
    if (started) return
    for (const invoke of nodesOf(machine, path).flatMap((n) => n.invoke)) {
      const child = childId(id, invoke.id)
      send(effects.get(child) ?? effectActor(id, invoke, w.context, { type: '' }, String(at)))
    }
  }

  /** The tags and children of the state at `path`, as a machine snapshot carries them. */
  function shape(id: string, machine: AnyStateMachine | undefined, path: string) {
    const nodes = nodesOf(machine, path)
    const invokes = nodes.flatMap((n) => n.invoke)
    const children = Object.fromEntries(invokes.map((i) => [i.id, { xstate$$type: 1, id: childId(id, i.id) }]))
    return { tags: [...new Set(nodes.flatMap((n) => [...n.tags]))], children }
  }

  /** An effect's result arrives: its child actor ends, before the parent takes the event. */
  function effectEnded(id: string, step: InspectedStep, at: string) {
    const result = /^xstate\.(done|error)\.actor\.(.+)$/.exec(step.event)
    if (!result) return undefined
    const child = childId(id, result[2]!)
    const snapshot = result[1] === 'done'
      ? { status: 'done', output: step.data.output }
      : { status: 'error', error: step.data.error }
    const event = { type: `xstate.${result[1]}` }
    effects.delete(child)
    send({ type: '@xstate.snapshot', sessionId: child, rootId: id, id: null, createdAt: at, event, snapshot })
    return child
  }

  /** The effect actors a step stops (their state left before they answered) and starts (their state entered). */
  function effectsMoved(
    id: string, machine: AnyStateMachine | undefined, step: InspectedStep, context: unknown, at: string,
    answered?: string,
  ) {
    const before = new Set(ancestors(step.from))
    const after = new Set(ancestors(step.to))
    for (const node of nodesOf(machine, step.from).filter((n) => !after.has(n.path.join('.')))) {
      for (const invoke of node.invoke.filter((i) => childId(id, i.id) !== answered)) {
        const stop = { type: 'xstate.stop' }
        effects.delete(childId(id, invoke.id))
        send({
          type: '@xstate.snapshot', sessionId: childId(id, invoke.id), rootId: id, id: null, createdAt: at, event: stop,
          snapshot: { status: 'stopped' },
        })
      }
    }
    const event = { ...step.data, type: step.event }
    for (const node of nodesOf(machine, step.to).filter((n) => !before.has(n.path.join('.')))) {
      for (const invoke of node.invoke) {
        const announcement = effectActor(id, invoke, context, event, at)
        if (effects.size >= 10_000) effects.clear()
        effects.set(childId(id, invoke.id), announcement)
        send(announcement)
      }
    }
  }

  /** The announcement of an effect as a child actor, with its input (computed as the machine does, redacted). */
  function effectActor(id: string, invoke: AnyStateNode['invoke'][number], context: unknown, event: Record<string, unknown>, at: string) {
    let input: unknown
    try {
      const args = { context, event, self: undefined } as never
      input = typeof invoke.input === 'function' ? invoke.input(args) : invoke.input
    } catch {
      input = undefined
    }
    const safe = input && typeof input === 'object' ? redactFields(input as Record<string, unknown>) : input
    return {
      type: '@xstate.actor',
      name: invoke.id,
      sessionId: childId(id, invoke.id),
      createdAt: at,
      rootId: id,
      parentId: id,
      id: null,
      definition: JSON.stringify({ id: typeof invoke.src === 'string' ? invoke.src : invoke.id }),
      snapshot: { status: 'active', input: safe, output: undefined, error: undefined },
    }
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
