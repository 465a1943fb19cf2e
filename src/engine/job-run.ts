import type { EventObject } from 'xstate'
import { defaultRetryPolicy } from './backoff.ts'
import type { RetryPolicy } from './types.ts'
import type { EngineCore, LocalJob } from './engine.ts'
import type { SafeError } from './errors.ts'
import type { JobLease } from './job-store.ts'

/**
 * A run of a job, as the job runner's parts (runner.ts, lease-keeper.ts, job-scheduler.ts,
 * job-executor.ts) share it.
 */

/** What a job run ended in, for metrics. */
export interface JobOutcome {
  kind: 'effect' | 'timer'
  name: string
  machine: string
  outcome: 'ok' | 'retry' | 'failed' | 'rejected' | 'dead'
  durationMs: number
  error?: SafeError
}

export type TimerJob = Omit<LocalJob, 'kind' | 'src' | 'input'> & { kind: 'timer'; event: EventObject }
export type RunnableJob = LocalJob | TimerJob

/** One run of a job this process holds: its lease, and the signal that ends it. */
export interface Run {
  job: RunnableJob
  lease: JobLease
  abort: AbortController
  /** Why the run lost its job (lease lost, cancelled, shutdown): its outcome must not land. */
  lost?: string
  /** When the database last confirmed the lease (this process's monotonic clock). */
  confirmedAt: number
}

export const logFields = ({ job }: Run) =>
  ({ workflowId: job.workflowId, jobId: job.id, job: job.name, attempt: job.attempts })

export const retryPolicy = (core: EngineCore, machine: string): RetryPolicy =>
  ({ ...defaultRetryPolicy, ...core.definition(machine).retry })
