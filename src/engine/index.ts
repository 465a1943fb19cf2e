import { createEngineCore, toWorkflow, type EngineOptions } from './engine.ts'
import * as queries from './queries.ts'
import { createJobRunner, type RunnerOptions } from './runner.ts'

export type { Workflow, SendResult, SendOptions, Logger, Sealer, AnyEvent, EngineOptions, TransitionListener } from './engine.ts'
export type { RunnerOptions } from './runner.ts'
export type { RetryPolicy } from './types.ts'
export type { WorkflowDefinition, PersistedState } from './definition.ts'
export { defineWorkflow } from './definition.ts'
export { EngineError } from './errors.ts'
export { toWorkflow } from './engine.ts'
export { persistently, retry, type RetryOptions } from './retry.ts'
export { backoffDelay } from './backoff.ts'
export { cancelQuery, isDatabaseBusy, isDatabaseUnavailable, isTransientDatabaseError, PG } from './pg.ts'
export type { DeadJob } from './job-store.ts'
// The engine's reads and upkeep over its own tables, and the pieces of it that views and tools
// outside it share: the rest of the service imports the engine from here only.
export * from './queries.ts'
export { readHistory, type HistoryEntry } from './store.ts'
export { definitionJson, persist, statePath, valueOf } from './snapshot.ts'
export { redactEvent } from './redact.ts'
// One lease implementation, on the database's clock: the service's own leases take theirs from here.
export { leaseEnd, leaseOn, type Lease, type LeaseColumns } from './lease.ts'
export { toSafeError, type SafeError } from './errors.ts'
export type { TransitionStep } from './engine.ts'
export type { JobOutcome } from './runner.ts'

/**
 * The durable engine: `create`/`send`/`get`/`waitFor`, `runner` for effects and timers, and
 * reads over its workflows (`list`, `find`, `counts`, `queue`): its tables are its own.
 */
export function createEngine(opts: EngineOptions & RunnerOptions) {
  const core = createEngineCore(opts)
  const { sql } = core
  return {
    ...core,
    runner: createJobRunner(core, opts),
    /** One page of a machine's workflows matching `filter`, newest first in `options.order`. */
    list: async (filter: queries.WorkflowFilter, options: queries.ListOptions) =>
      (await queries.listWorkflows(sql, filter, options)).map(toWorkflow),
    /** A workflow of `machine` by its id or, the newest with it, by its key. */
    find: async (machine: string, idOrKey: string) => {
      const row = await queries.findWorkflow(sql, machine, idOrKey)
      return row && toWorkflow(row)
    },
    /** How many workflows are in each state, with each failure reason, by machine. */
    counts: (machine?: string) => queries.countWorkflows(sql, machine),
    /** The job queue: queued, due and running jobs, and the oldest due one's wait. */
    queue: () => queries.queueStats(sql, core.now()),
  }
}

export type Engine = ReturnType<typeof createEngine>
