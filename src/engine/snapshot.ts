import type { AnyMachineSnapshot, AnyStateMachine, EventObject, StateValue } from 'xstate'
import type { PersistedState } from './definition.ts'

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

export function planEffects(next: AnyMachineSnapshot, actions: ExecutableAction[]): EffectPlan {
  const plan: EffectPlan = { effects: [], timers: [], cancelledTimers: [], activeInvokes: [] }
  for (const action of actions) {
    const p = (action.params ?? {}) as Record<string, unknown>
    if (action.type === 'xstate.spawnChild') {
      if (typeof p.src !== 'string') throw new Error(`invoke ${String(p.id)} must name an actor registered in setup()`)
      plan.effects.push({ name: String(p.id), src: p.src, input: p.input })
    } else if (action.type === 'xstate.raise' && typeof p.delay === 'number') {
      plan.timers.push({ name: String(p.id), event: p.event as EventObject, delayMs: p.delay })
    } else if (action.type === 'xstate.cancel') {
      plan.cancelledTimers.push(String(p.sendId))
    }
  }
  const nodes = (next as unknown as { _nodes: { invoke: { id: string }[] }[] })._nodes
  plan.activeInvokes = nodes.flatMap((node) => node.invoke.map((invoke) => invoke.id))
  return plan
}

/** A machine's definition as plain JSON (implementations dropped), for visualisers. */
export const definitionJson = (machine: AnyStateMachine): Record<string, unknown> =>
  JSON.parse(JSON.stringify(machine.definition, (_key, value) => (typeof value === 'function' ? undefined : value)))
