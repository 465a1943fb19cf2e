import type { AnyStateMachine, AnyStateNode, EventObject } from 'xstate'
import { redactEvent, type TransitionStep, valueOf, type Workflow } from '../engine/index.ts'

/**
 * Redaction by what a field is. Events are the machine's events, whose secret fields (the OAuth
 * `code` of a callback) `redactEvent` names; an effect's input is redacted the same way. Contexts
 * hold no secret by design and nested values (an error's `code: 'WIX_REJECTED'`) are shown whole.
 */
export const redactFields = (value: Record<string, unknown>) => redactEvent(value as EventObject)

/** An effect of a workflow, as a child actor of it. */
export const childId = (parent: string, invokeId: string) => `${parent}/${invokeId}`

/** `version`: the workflow's after the steps recorded with it, which numbers them as history does. */
export type InspectedWorkflow = Pick<Workflow, 'id' | 'machine' | 'context' | 'status'> & Partial<Pick<Workflow, 'version'>>
/** A step to inspect; `at` is when it happened (a replay's), else now; `seq` its number in history. */
export type InspectedStep = TransitionStep & { at?: Date; seq?: number }
/** A workflow as it stands, to announce to an inspector that may not know it. */
export type LiveWorkflow = InspectedWorkflow & Pick<Workflow, 'statePath' | 'createdAt'>

export const ancestors = (path: string | null) => (path ? path.split('.').map((_, i, p) => p.slice(0, i + 1).join('.')) : [])

function definitionOf(machine: AnyStateMachine): string | undefined {
  try {
    // As the library sends it: the machine's config, functions by name.
    return JSON.stringify(machine.config, (_k, v: unknown) => (typeof v === 'function' ? { type: v.name } : v))
  } catch {
    return undefined
  }
}

/** The state nodes of the state at `path`, outermost first; none when the machine is unknown. */
export const nodesOf = (machine: AnyStateMachine | undefined, path: string | null): AnyStateNode[] => {
  if (!machine) return []
  return ancestors(path).flatMap((p) => {
    try {
      return [machine.getStateNodeById(`${machine.id}.${p}`)]
    } catch {
      return []
    }
  })
}

/** The tags and children of the state at `path`, as a machine snapshot carries them. */
export function shape(id: string, machine: AnyStateMachine | undefined, path: string) {
  const nodes = nodesOf(machine, path)
  const invokes = nodes.flatMap((n) => n.invoke)
  const children = Object.fromEntries(invokes.map((i) => [i.id, { xstate$$type: 1, id: childId(id, i.id) }]))
  return { tags: [...new Set(nodes.flatMap((n) => [...n.tags]))], children }
}

/**
 * The announcement of a workflow as an actor in the state at `path`, with its machine so the
 * inspector draws it. A workflow that has just started (`started`) has no children yet.
 */
export function workflowActor(id: string, w: InspectedWorkflow, machine: AnyStateMachine | undefined, path: string, at: number, started: boolean) {
  const { tags, children } = shape(id, machine, path)
  return {
    type: '@xstate.actor',
    name: machine?.id ?? w.machine,
    sessionId: id,
    createdAt: String(at),
    rootId: id,
    parentId: undefined,
    id: null,
    definition: machine ? definitionOf(machine) : undefined,
    snapshot: { value: valueOf(path), context: w.context, status: 'active', tags, children: started ? {} : children },
  }
}

/** The announcement of an effect as a child actor, with its input (computed as the machine does, redacted). */
export function effectActor(id: string, invoke: AnyStateNode['invoke'][number], context: unknown, event: Record<string, unknown>, at: string) {
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
