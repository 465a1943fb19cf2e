import type { AnyMachineSnapshot } from 'xstate'
import type { WorkflowDefinition } from './definition.ts'
import { machineVersionUnsupported } from './errors.ts'
import { redactEvent } from './redact.ts'
import { persist, planEffects, restore, statePath, type EffectPlan, type stepper } from './snapshot.ts'
import type { HistoryEntry, WorkflowRow } from './store.ts'
import type { PersistedState } from './types.ts'
import type { FollowUp } from './wait.ts'
import { toWorkflow, workflowAfter, type AnyEvent, type Workflow } from './workflow.ts'

/**
 * What the engine decides, and nothing it does: given a stored row, its machine, an event and
 * the time, the state it leads to, its history rows, and the effects and timers it plans and
 * cancels. No I/O; `send` and `create` write what these return.
 */

/** XState's pure step for one machine (`stepper` in snapshot.ts). */
export type Stepper = ReturnType<typeof stepper>

/** A history row as a write holds it: the commit gives it its time. */
type HistoryStep = Omit<HistoryEntry, 'at'>

/** An event the row takes: everything its write holds but the jobs' ids and sealed inputs. */
export interface Accepted {
  accepted: true
  /** The workflow as the write leaves it. */
  workflow: Workflow
  state: PersistedState
  /** The event's history row, and the follow-up's when one rides along (`folded`). */
  history: HistoryStep[]
  /** The context after each history row. */
  contexts: Record<string, unknown>[]
  plan: EffectPlan
  /** The follow-up this write carries, if one does. */
  folded?: FollowUp
}

/** An event the row does not take. */
export interface Rejected {
  accepted: false
  /** The workflow as read. */
  workflow: Workflow
  /** The event is the result of a job run that no longer holds its job. */
  stale: boolean
}

export type Decision = Accepted | Rejected

export interface DecideInput {
  /** The row as read (with a job's lease, `job_held`: whether that run still holds it), or this process's last view of it. */
  row: WorkflowRow & { job_held?: boolean | null }
  /** `row` was read just now (not this process's last view): only then does `job_held` count. */
  fresh: boolean
  def: WorkflowDefinition
  step: Stepper
  event: AnyEvent
  /** Who sent it (history's `source`). */
  source: string
  /** The event is a job run's result. */
  fromJob: boolean
  /** The follow-up waiting in this process for this workflow, if any (`waitAndSend`). */
  follow?: FollowUp
  at: Date
}

/** A stored snapshot as a live one, migrated if an older machine wrote it. */
export function loadSnapshot(def: WorkflowDefinition, row: WorkflowRow): AnyMachineSnapshot {
  let state = row.snapshot
  if (row.machine_version !== def.version) {
    if (!def.migrate || row.machine_version > def.version) {
      throw machineVersionUnsupported(def.name, row.machine_version, def.version)
    }
    state = def.migrate(state, row.machine_version)
  }
  return restore(def.machine, state)
}

/** The follow-up's event for `w`, if `w` is what it waits for; a caller's function that throws counts as none. */
export function followUpFor(follow: FollowUp, w: Workflow): AnyEvent | undefined {
  try {
    return follow.done(w) ? follow.next(w) : undefined
  } catch {
    return undefined
  }
}

/** Whether the row takes the event, and if it does, what the write of it holds. */
export function decide(input: DecideInput): Decision {
  const { row, def, step, event, at } = input
  const current = toWorkflow(row)
  // A result from a run that no longer holds its job (cancelled, taken over) is not news.
  const stale = input.fresh && input.fromJob && !row.job_held
  const snapshot = loadSnapshot(def, row)
  // A workflow that reached a final state takes no more events, whatever the machine says.
  if (stale || snapshot.status !== 'active' || !snapshot.can(event)) return { accepted: false, workflow: current, stale }
  let [next, actions] = step.next(snapshot, event)
  const history: HistoryStep[] = [{
    seq: row.version + 1, event_type: event.type, event: redactEvent(event), from_state: current.statePath,
    to_state: statePath(next.value), source: input.source,
  }]
  // A follow-up waiting in this process for the state this event leads to rides in the same
  // write (the browser sent on with the exchange's result): one commit, one row version.
  const contexts = [next.context]
  const follow = input.follow
  const followEvent = follow && !follow.signal?.aborted && next.status === 'active'
    ? followUpFor(follow, workflowAfter(current, def, persist(next), row.version + 1, at)) : undefined
  let folded: FollowUp | undefined
  if (follow && followEvent && next.can(followEvent)) {
    folded = follow
    const from = statePath(next.value)
    let more: typeof actions
    ;[next, more] = step.next(next, followEvent)
    actions = [...actions, ...more]
    contexts.push(next.context)
    history.push({
      seq: row.version + 2, event_type: followEvent.type, event: redactEvent(followEvent), from_state: from,
      to_state: statePath(next.value), source: follow.source,
    })
  }
  const plan = planEffects(next, actions)
  const state = persist(next)
  const workflow = workflowAfter(current, def, state, row.version + history.length, at)
  return { accepted: true, workflow, state, history, contexts, plan, folded }
}

/** A workflow's start and the `events` applied right after it, as its one write holds them (`create`). */
export function decideStart(machine: string, step: Stepper, input: Record<string, unknown>, events: AnyEvent[], source: string) {
  let [snapshot, actions] = step.initial(input)
  const history: HistoryStep[] = [
    { seq: 1, event_type: 'xstate.init', event: { type: 'xstate.init' }, from_state: null, to_state: statePath(snapshot.value), source },
  ]
  const allActions = [...actions]
  const contexts = [snapshot.context]
  for (const event of events) {
    if (!snapshot.can(event)) throw new Error(`${machine}: ${event.type} is not accepted right after start`)
    const from = statePath(snapshot.value)
    ;[snapshot, actions] = step.next(snapshot, event)
    allActions.push(...actions)
    contexts.push(snapshot.context)
    history.push({ seq: history.length + 1, event_type: event.type, event: redactEvent(event), from_state: from, to_state: statePath(snapshot.value), source })
  }
  const plan = planEffects(snapshot, allActions)
  const state = persist(snapshot)
  return { state, history, contexts, plan }
}
