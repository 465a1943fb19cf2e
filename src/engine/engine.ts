import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Sql } from 'postgres'
import { makeCreate } from './create.ts'
import type { WorkflowDefinition } from './definition.ts'
import { unknownMachine } from './errors.ts'
import * as jobStore from './job-store.ts'
import { jobsFor, type Sealer } from './jobs.ts'
import { createListeners } from './listeners.ts'
import { createRecentRows } from './recent.ts'
import { makeSend } from './send.ts'
import { stepper, type EffectPlan } from './snapshot.ts'
import * as store from './store.ts'
import type { Logger } from './types.ts'
import { makeWaitAndSend, makeWaitFor, type FollowUp } from './wait.ts'
import { createWakeups } from './wakeups.ts'
import { toWorkflow, type Workflow } from './workflow.ts'
import { createWriter } from './writer.ts'

export type { Logger } from './types.ts'
export type { LocalJob, Sealer } from './jobs.ts'
export type { SendOptions } from './send.ts'
export type { AnyEvent, SendResult, TransitionListener, TransitionStep, Workflow } from './workflow.ts'
export { toWorkflow } from './workflow.ts'

export interface EngineOptions {
  sql: Sql
  /**
   * A pool of its own for lease renewals and job claims (default: `sql`). On a busy or stalled
   * `sql` pool they would queue behind the service's other statements: renewals late past a
   * lease abort runs that were fine, and another instance runs them again.
   */
  leaseSql?: Sql
  definitions: WorkflowDefinition[]
  sealer: Sealer
  log: Logger
  /** Identifies this process in job leases. */
  owner?: string
  /**
   * The engine's clock for timers, backoff and timestamps: tests move it instead of waiting.
   * Leases are not on it: they expire on the database's clock, which every instance shares.
   */
  now?: () => Date
  /** How long a job's lease lasts without a heartbeat renewing it (default 6 s). */
  leaseMs?: number
  /** How long a write may wait, queued then in flight, before it is cancelled and failed (default 15 s). */
  writeTimeoutMs?: number
  /** Writes queued in this process at most (default 10,000); past it one is refused at once, `WRITE_QUEUE_FULL` (503). */
  maxQueuedWrites?: number
  /**
   * LISTEN/NOTIFY wake-ups between instances (a Postgres server only: PGlite has no LISTEN).
   * The runner listens while started; polling stays as the fallback.
   */
  listen?: boolean
}

export const DEFAULT_LEASE_MS = 6_000

/** This host's name, where the runtime may tell it (Deno asks for a permission). */
const hostName = () => {
  try {
    return hostname()
  } catch {
    return 'host'
  }
}

/**
 * The engine's core, composed: `create` (create.ts) and `send` (send.ts) write what the pure
 * `decide` (decide.ts) returns; `waitFor` and `waitAndSend` (wait.ts) wait on this process's
 * commits, NOTIFY and polls; recent.ts keeps the rows this process last saw.
 */
export function createEngineCore(opts: EngineOptions) {
  const { sql, sealer, log } = opts
  const leaseSql = opts.leaseSql ?? sql
  // Host and pid say which instance holds a job; the random part tells a restarted pid apart.
  const owner = opts.owner ?? `${hostName()}-${process.pid}-${randomUUID().slice(0, 8)}`
  const now = opts.now ?? (() => new Date())
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS
  const definitions = new Map(opts.definitions.map((d) => [d.name, d]))
  const wakeups = createWakeups(sql, log, opts.listen ?? false)
  // Creates and accepted events of workflows moving at once share a statement and a commit.
  const writer = createWriter(sql, { log, writeTimeoutMs: opts.writeTimeoutMs, maxQueued: opts.maxQueuedWrites, origin: owner })
  const recent = createRecentRows()
  /** Follow-ups waiting in this process, by workflow: one each (see `waitAndSend`). */
  const followUps = new Map<string, FollowUp>()
  const { afterCommit, onTransition, setLocalRunner } = createListeners(log)

  const definition = (name: string) => {
    const d = definitions.get(name)
    if (!d) throw unknownMachine(name)
    return d
  }
  const steppers = new Map([...definitions].map(([name, d]) => [name, stepper(d.machine)]))
  const step = (machine: string) => steppers.get(machine)!
  const jobs = (workflowId: string, machine: string, plan: EffectPlan, at: Date) =>
    jobsFor({ sealer, owner, leaseMs }, workflowId, machine, plan, at)

  const create = makeCreate({ log, now, writer, recent, definition, step, jobsFor: jobs, afterCommit })
  const send = makeSend({ sql, log, now, writer, recent, followUps, definition, step, jobsFor: jobs, afterCommit, notify: wakeups.enabled })
  async function get(id: string): Promise<Workflow | undefined> {
    const row = await store.readWorkflow(sql, id)
    if (row) recent.remember(row)
    return row && toWorkflow(row)
  }
  const waitFor = makeWaitFor({ owner, recent, wakeups, get, onTransition })
  const waitAndSend = makeWaitAndSend({ followUps, waitFor, send })

  return {
    owner, now, leaseMs, log, sql, leaseSql, sealer, wakeups,
    definition, create, send, get, waitFor, waitAndSend,
    history: (id: string) => store.readHistory(sql, id),
    /** The group-commit writer's queue and its oldest write in flight (metrics). */
    writerStats: () => writer.stats(),
    /** Jobs that ended dead (could not be opened or run), newest first, with their reasons. */
    deadJobs: (limit?: number) => jobStore.deadJobs(sql, limit),
    /** How many jobs ended dead, by kind and reason code (metrics, `/api/stats`). */
    deadJobCounts: () => jobStore.deadJobCounts(sql),
    /** `listener(workflow, steps)` after every committed create/send in this process. */
    onTransition,
    setLocalRunner,
  }
}

export type EngineCore = ReturnType<typeof createEngineCore>
