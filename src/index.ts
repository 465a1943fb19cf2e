/**
 * `wix-install-engine`: the generic durable engine, typed by the machines it runs. The types are
 * a layer over `./engine/index.ts` (the same functions at run time): a workflow's name picks its
 * machine, and with it the input `create` takes and the events `send` takes.
 */
import type { AnyStateMachine, EventFrom, InputFrom, SnapshotFrom } from 'xstate'
import * as engine from './engine/index.ts'
import type { EngineOptions, RunnerOptions, SendOptions, TransitionListener, Workflow } from './engine/index.ts'

export { EngineError } from './engine/index.ts'
export type {
  Logger, Sealer, PersistedState, Workflow, SendResult, RunnerOptions, TransitionStep, RetryPolicy, WorkflowFilter, ListOptions, ListOrder,
} from './engine/index.ts'

/** A workflow definition that remembers its machine and name for the types. */
export type WorkflowDefinition<M extends AnyStateMachine = AnyStateMachine, N extends string = string> =
  Omit<engine.WorkflowDefinition, 'name' | 'machine'> & { name: N; machine: M }

/** Names a machine to the engine; checked when the engine is created. */
export function defineWorkflow<M extends AnyStateMachine, const N extends string>(
  definition: WorkflowDefinition<M, N>,
): WorkflowDefinition<M, N> {
  return engine.defineWorkflow(definition) as WorkflowDefinition<M, N>
}

type Defs = readonly WorkflowDefinition[]
type Names<D extends Defs> = D[number]['name']
type MachineOf<D extends Defs, N> = Extract<D[number], { name: N }>['machine']

/** A workflow whose context is its machine's. */
export type WorkflowOf<M extends AnyStateMachine> = Omit<Workflow, 'context'> & { context: SnapshotFrom<M>['context'] }

type Result<M extends AnyStateMachine> = { accepted: boolean; workflow: WorkflowOf<M> }

export interface Engine<D extends Defs = Defs> {
  /** Starts a workflow of machine `machine` with that machine's input (and an `id` if you choose it). */
  create<N extends Names<D>>(
    machine: N,
    input: InputFrom<MachineOf<D, N>> & { id?: string },
    options: { source: string; events?: EventFrom<MachineOf<D, N>>[] },
  ): Promise<WorkflowOf<MachineOf<D, N>>>
  /** One event to one workflow; with `machine`, only a workflow of that machine takes it. */
  send<N extends Names<D>>(
    id: string,
    event: EventFrom<MachineOf<D, N>>,
    options: Omit<SendOptions, 'machine' | 'job'> & { machine: N },
  ): Promise<Result<MachineOf<D, N>>>
  send(
    id: string,
    event: EventFrom<D[number]['machine']>,
    options: Omit<SendOptions, 'job'>,
  ): Promise<Result<D[number]['machine']>>
  get(id: string): Promise<WorkflowOf<D[number]['machine']> | undefined>
  waitFor(
    id: string,
    done: (workflow: WorkflowOf<D[number]['machine']>) => boolean,
    timeoutMs: number,
    pollMs?: number,
  ): Promise<WorkflowOf<D[number]['machine']> | undefined>
  /**
   * Waits like `waitFor` until `done` holds, then sends `next(workflow)` if it names an event: in
   * the very write of the event that made `done` hold when this process applied it (an effect's
   * result run here), else in a write of its own. `signal` ends the wait and sends nothing.
   */
  waitAndSend(
    id: string,
    done: (workflow: WorkflowOf<D[number]['machine']>) => boolean,
    next: (workflow: WorkflowOf<D[number]['machine']>) => EventFrom<D[number]['machine']> | undefined,
    options: { source: string; timeoutMs: number; signal?: AbortSignal },
  ): Promise<{ workflow: WorkflowOf<D[number]['machine']> | undefined; sent?: Result<D[number]['machine']> }>
  history: engine.Engine['history']
  /** One page of workflows of one of your machines, newest first in `options.order`, by keyset. */
  list<N extends Names<D>>(
    filter: Omit<engine.WorkflowFilter, 'machine'> & { machine: N },
    options: engine.ListOptions,
  ): Promise<WorkflowOf<MachineOf<D, N>>[]>
  /** A workflow of `machine` by its id or, the newest with it, by its key. */
  find<N extends Names<D>>(machine: N, idOrKey: string): Promise<WorkflowOf<MachineOf<D, N>> | undefined>
  /** How many workflows are in each state, with each failure reason, by machine. */
  counts: engine.Engine['counts']
  /** The job queue: queued, due and running jobs, and the oldest due one's wait. */
  queue: engine.Engine['queue']
  onTransition(listener: TransitionListener): () => void
  /** Runs effects and fires timers: `start()` polls, `stop(graceMs)` drains, `tick()` runs what is due once. */
  runner: engine.Engine['runner']
}

export type CreateEngineOptions<D extends Defs> = Omit<EngineOptions, 'definitions'> &
  RunnerOptions & { definitions: D }

/** The durable engine over your workflows, on a postgres.js client whose database is migrated. */
export function createEngine<const D extends Defs>(options: CreateEngineOptions<D>): Engine<D> {
  // The same engine at run time: only its types are narrowed to the machines given.
  const untyped = options as CreateEngineOptions<D> & { definitions: engine.WorkflowDefinition[] }
  return engine.createEngine(untyped) as unknown as Engine<D>
}

/**
 * Applies the engine's migrations (forward-only, under an advisory lock) to a postgres.js client's
 * database: its tables go in the schema `wix_engine`, apart from yours.
 */
export { migrateEngine as migrate } from './db/migrate.ts'
