import { createActor, initialTransition, transition, type AnyMachineSnapshot, type AnyStateMachine, type EventObject, type StateValue } from 'xstate'
import type { PersistedState } from './types.ts'

export const persist = (snapshot: AnyMachineSnapshot): PersistedState => ({
  value: snapshot.value,
  context: snapshot.context,
  status: snapshot.status,
  ...(snapshot.output !== undefined && { output: snapshot.output }),
})

/** Children are not restored: the engine runs effects itself, from the jobs table. */
export const restore = (machine: AnyStateMachine, state: PersistedState): AnyMachineSnapshot =>
  machine.resolveState({ value: state.value, context: state.context, output: state.output })

/** The top-level state: `{ SetupIncomplete: 'waiting' }` → `SetupIncomplete`. */
export const stateName = (value: StateValue): string =>
  typeof value === 'string' ? value : Object.keys(value)[0]!

/** The full path: `{ SetupIncomplete: 'waiting' }` → `SetupIncomplete.waiting`. */
export const statePath = (value: StateValue): string =>
  typeof value === 'string'
    ? value
    : Object.entries(value)
        .map(([k, v]) => (v && (typeof v === 'string' || Object.keys(v).length) ? `${k}.${statePath(v as StateValue)}` : k))
        .join(',')

/** The inverse of `statePath` for one branch: `SetupIncomplete.finishing` → `{ SetupIncomplete: 'finishing' }`. */
export function valueOf(path: string): StateValue {
  const [head, ...rest] = path.split('.')
  return rest.length ? { [head!]: valueOf(rest.join('.')) } : head!
}

export interface SpawnedEffect {
  name: string
  src: string
  input: unknown
}
export interface ScheduledTimer {
  name: string
  event: EventObject
  delayMs: number
}

/** What a transition asked the world to do, read off XState's unexecuted actions. */
export interface EffectPlan {
  effects: SpawnedEffect[]
  timers: ScheduledTimer[]
  cancelledTimers: string[]
  /** Invoke ids still active after the transition: effect jobs not among them are cancelled. */
  activeInvokes: string[]
}

interface ExecutableAction {
  type: string
  params?: unknown
}

/**
 * The one planner, for `create` and `send` alike. Nothing is stored while a step runs, so only
 * what is still wanted after its last action counts: a timer set and cancelled within the step
 * is dropped (its cancel still reaches a stored timer of that name), and an effect whose state
 * was entered and left within the step never starts.
 */
export function planEffects(next: AnyMachineSnapshot, actions: ExecutableAction[]): EffectPlan {
  const effects = new Map<string, SpawnedEffect>()
  const timers = new Map<string, ScheduledTimer>()
  const cancelled = new Set<string>()
  for (const action of actions) {
    const p = (action.params ?? {}) as Record<string, unknown>
    if (action.type === 'xstate.spawnChild') {
      if (typeof p.src !== 'string') throw new Error(`invoke ${String(p.id)} must name an actor registered in setup()`)
      effects.set(String(p.id), { name: String(p.id), src: p.src, input: p.input })
    } else if (action.type === 'xstate.raise' && typeof p.delay === 'number') {
      timers.set(String(p.id), { name: String(p.id), event: p.event as EventObject, delayMs: p.delay })
    } else if (action.type === 'xstate.cancel') {
      timers.delete(String(p.sendId))
      cancelled.add(String(p.sendId))
    }
  }
  const nodes = (next as unknown as { _nodes: { invoke: { id: string }[] }[] })._nodes
  const activeInvokes = nodes.flatMap((node) => node.invoke.map((invoke) => invoke.id))
  return {
    effects: [...effects.values()].filter((e) => activeInvokes.includes(e.name)),
    timers: [...timers.values()],
    cancelledTimers: [...cancelled],
    activeInvokes,
  }
}

/** Built-in actions the pure `transition()` applies itself; every other action would never run. */
const DURABLE_ACTIONS = new Set(['xstate.assign', 'xstate.raise', 'xstate.cancel'])

interface NodeShape {
  id: string
  key: string
  type: string
  states: Record<string, NodeShape>
  entry: unknown[]
  exit: unknown[]
  always?: { actions: unknown[] }[]
  transitions: Map<string, { actions: unknown[] }[]>
  invoke: { id: string; src: unknown }[]
}

/** What an action is, as a message names it: its built-in type, or its name, or "an inline function". */
function actionKind(machine: AnyStateMachine, action: unknown): { durable: boolean; name: string } {
  // A string or `{ type, params }` names an implementation; a function is the action itself.
  const named = typeof action === 'string' ? action
    : typeof action === 'object' && action !== null ? (action as { type?: unknown }).type
    : undefined
  const impl = typeof named === 'string' ? (machine.implementations.actions as Record<string, unknown>)[named] : action
  const builtIn = typeof impl === 'function' ? (impl as { type?: unknown }).type : undefined
  if (typeof builtIn === 'string' && builtIn.startsWith('xstate.')) {
    const name = typeof named === 'string' ? `${named} (${builtIn})` : builtIn
    return { durable: DURABLE_ACTIONS.has(builtIn), name }
  }
  return { durable: false, name: typeof named === 'string' ? `action ${named}` : 'an inline action function' }
}

/** True for `fromPromise` logic: its resolve event completes it (callback and observable logic ignore it). */
function isPromiseLogic(logic: unknown): boolean {
  const l = logic as { transition?: (s: unknown, e: unknown, scope: unknown) => { status?: string } } | undefined
  if (!l || typeof l.transition !== 'function' || 'root' in l) return false
  try {
    return l.transition({ status: 'active' }, { type: 'xstate.promise.resolve', data: null }, {}).status === 'done'
  } catch {
    return false
  }
}

/**
 * The constructs the engine cannot run durably, by state: it persists `value` and `context`,
 * runs `invoke`d promise actors as jobs and `after` delays as timers, and applies only what the
 * pure `transition()` applies. Anything else would be dropped or mangled without a word.
 */
export function undurableConstructs(machine: AnyStateMachine): string[] {
  const problems: string[] = []
  const visit = (node: NodeShape) => {
    const where = `state ${node.id}`
    if (node.type === 'parallel') problems.push(`${where} is a parallel state`)
    if (node.type === 'history') problems.push(`${where} is a history state`)
    const actions: [string, unknown[]][] = [
      ['entry', node.entry],
      ['exit', node.exit],
      ...[...node.transitions].map(([event, ts]): [string, unknown[]] => [`on ${event}`, ts.flatMap((t) => t.actions)]),
      ['always', (node.always ?? []).flatMap((t) => t.actions)],
    ]
    for (const [when, list] of actions) {
      for (const action of list) {
        const kind = actionKind(machine, action)
        if (!kind.durable) problems.push(`${where} runs ${kind.name} (${when}); only assign, raise and cancel apply`)
      }
    }
    for (const [i, invoke] of node.invoke.entries()) {
      if (typeof invoke.src !== 'string') {
        problems.push(`${where} invokes inline logic; register it in setup({ actors }) and refer to it by name`)
        continue
      }
      // XState names an invoke without an id `<index>.<state id>`: results could not find their job.
      if (invoke.id === `${i}.${node.id}`) problems.push(`${where} invokes ${invoke.src} without an explicit id`)
      const logic = (machine.implementations.actors as Record<string, unknown>)[invoke.src]
      if (logic && !isPromiseLogic(logic)) {
        problems.push(`${where} invokes ${invoke.src}, which is not a fromPromise actor ` +
          '(callback, observable and child-machine actors cannot be persisted)')
      }
    }
    Object.values(node.states ?? {}).forEach(visit)
  }
  visit((machine as unknown as { root: NodeShape }).root)
  return problems
}

/** A machine's definition as plain JSON (implementations dropped), for visualisers. */
export const definitionJson = (machine: AnyStateMachine): Record<string, unknown> =>
  JSON.parse(JSON.stringify(machine.definition, (_key, value) => (typeof value === 'function' ? undefined : value)))

type Step = [AnyMachineSnapshot, ExecutableAction[]]

/**
 * XState's pure `initialTransition()` / `transition()` with one actor scope per machine instead
 * of one per call: theirs builds a throwaway actor each time (computing the machine's initial
 * state with no input), which cost more than the step itself. The scope is inert, as theirs:
 * actions are collected, never executed, and a spawned child is never started, so nothing is
 * registered in its system between calls. Machines whose invokes carry a `systemId` would
 * register one there: they take XState's own functions.
 */
export function stepper(machine: AnyStateMachine) {
  type Node = { invoke: { systemId?: string }[]; states: Record<string, Node> }
  const keyed = (node: Node): boolean =>
    node.invoke.some((invoke) => invoke.systemId !== undefined) || Object.values(node.states).some(keyed)
  if (keyed((machine as unknown as { root: Node }).root)) {
    return {
      initial: (input: unknown): Step => initialTransition(machine, input as never) as Step,
      next: (snapshot: AnyMachineSnapshot, event: EventObject): Step => transition(machine, snapshot, event) as Step,
    }
  }
  let collected: ExecutableAction[] = []
  const self = createActor(machine)
  const scope = {
    self, defer: () => {}, id: '', logger: () => {}, sessionId: '', stopChild: () => {}, system: self.system,
    emit: () => {}, actionExecutor: (action: ExecutableAction) => void collected.push(action),
  }
  const run = (step: () => AnyMachineSnapshot): Step => {
    collected = []
    const snapshot = step()
    return [snapshot, collected]
  }
  return {
    initial: (input: unknown) => run(() => machine.getInitialSnapshot(scope as never, input)),
    next: (snapshot: AnyMachineSnapshot, event: EventObject) => run(() => machine.transition(snapshot, event, scope as never)),
  }
}
