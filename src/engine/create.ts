import { randomUUID } from 'node:crypto'
import type { WorkflowDefinition } from './definition.ts'
import { decideStart, type Stepper } from './decide.ts'
import type { LocalJob, PlannedJobs } from './jobs.ts'
import type { RecentRows } from './recent.ts'
import { stateName, type EffectPlan } from './snapshot.ts'
import type { WorkflowRow } from './store.ts'
import type { Logger } from './types.ts'
import type { Writer } from './writer.ts'
import { stepsOf, toWorkflow, type AnyEvent, type TransitionStep, type Workflow } from './workflow.ts'

export interface CreateDeps {
  log: Logger
  now: () => Date
  writer: Writer
  recent: RecentRows
  definition: (machine: string) => WorkflowDefinition
  step: (machine: string) => Stepper
  jobsFor: (workflowId: string, machine: string, plan: EffectPlan, at: Date) => PlannedJobs
  afterCommit: (workflow: Workflow, local: LocalJob[], steps: TransitionStep[]) => void
}

/** The engine's `create`. */
export function makeCreate(deps: CreateDeps) {
  const { log, now, writer, recent, definition, step, jobsFor, afterCommit } = deps
  /**
   * Starts a workflow and applies `events` to it, all in one write: the app-url route creates an
   * installation and sends it to the installer in a single round trip.
   */
  return async function create(machine: string, input: Record<string, unknown> & { id?: string }, o: { source: string; events?: AnyEvent[] }) {
    const def = definition(machine)
    const id = input.id ?? randomUUID()
    const at = now()
    const { state, history, contexts, plan } = decideStart(machine, step(machine), { ...input, id }, o.events ?? [], o.source)
    const { local, effects, timers } = jobsFor(id, machine, plan, at)
    const row: WorkflowRow = {
      id, machine, machine_version: def.version, ...def.project(state), state: stateName(state.value),
      snapshot: state, version: history.length, created_at: at, updated_at: at,
    }
    await writer.create({ ...row, now: at, history, effects, timers })
    recent.remember(row)
    const workflow = toWorkflow(row)
    log.info({ workflowId: id, machine, state: workflow.statePath, source: o.source }, 'workflow created')
    afterCommit(workflow, local, stepsOf(history, contexts))
    return workflow
  }
}
