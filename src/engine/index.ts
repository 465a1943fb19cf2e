import { createEngineCore, type EngineOptions } from './engine.ts'
import { createJobRunner, type RunnerOptions } from './runner.ts'

export type { Workflow, SendResult, Logger, Sealer, AnyEvent } from './engine.ts'
export type { WorkflowDefinition, PersistedState } from './definition.ts'
export { defineWorkflow } from './definition.ts'
export { EngineError } from './errors.ts'
export { toWorkflow } from './engine.ts'
export { persistently } from './helpers.ts'
export type { DeadJob } from './store.ts'

/** The durable engine: `create`/`send`/`get`/`waitFor`, plus `runner` for effects and timers. */
export function createEngine(opts: EngineOptions & RunnerOptions) {
  const core = createEngineCore(opts)
  return { ...core, runner: createJobRunner(core, opts) }
}

export type Engine = ReturnType<typeof createEngine>
