import type { AnyStateMachine } from 'xstate'
import { ancestors, childId, effectActor, nodesOf, type InspectedStep, type InspectedWorkflow } from './actor-messages.ts'

/**
 * Each workflow's effects as child actors of it: announced as their state is entered (and again
 * with their workflow), ended by their result, stopped when their state is left before it.
 */
export function createEffectActors(send: (message: Record<string, unknown>) => void) {
  // The announcement of each running effect, sent again whenever its workflow is announced again.
  const effects = new Map<string, Record<string, unknown>>()

  /** Announces the effects running in the state at `path`, after their workflow's own announcement. */
  function announceRunning(id: string, w: InspectedWorkflow, machine: AnyStateMachine | undefined, path: string, at: number) {
    for (const invoke of nodesOf(machine, path).flatMap((n) => n.invoke)) {
      const child = childId(id, invoke.id)
      send(effects.get(child) ?? effectActor(id, invoke, w.context, { type: '' }, String(at)))
    }
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

  return { announceRunning, effectEnded, effectsMoved }
}
