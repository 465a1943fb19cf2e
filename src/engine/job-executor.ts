import type { AnyActorLogic, EventObject } from 'xstate'
import { isTransientDatabaseError } from './pg.ts'
import { backoffDelay } from './backoff.ts'
import type { RetryPolicy } from './types.ts'
import type { AnyEvent, EngineCore, LocalJob } from './engine.ts'
import { EngineError, toSafeError, type SafeError } from './errors.ts'
import { retry } from './retry.ts'
import * as jobStore from './job-store.ts'
import { runActor, withRunInfo } from './effect-actor.ts'
import { logFields, retryPolicy, type JobOutcome, type Run, type RunnableJob, type TimerJob } from './job-run.ts'

/**
 * Runs a job this process holds: runs an effect or fires a timer, and commits what it ended in,
 * fenced by the run's lease (a run that lost its job lands nothing), or gives the job up for good.
 */

/** What running a job needs besides the run itself. */
export interface RunContext {
  core: EngineCore
  effectTimeoutMs?: number
  /** Told what every run ended in (metrics). */
  observers: Set<(o: JobOutcome) => void>
  /** Claims again at `at` (a retry's due time), not at the next poll. */
  wakeAt: (at: Date) => void
}

/** Claims that ran out (crashes, lost leases, shutdowns) before a timer is given up on. */
const TIMER_ATTEMPTS = 10

/** The database's weather, and the engine's own refusals that pass with it (contention, a full write queue). */
const transient = (err: unknown) => {
  const code = (err as { code?: unknown } | null)?.code
  return isTransientDatabaseError(err) || code === 'WRITE_CONTENTION' || code === 'WRITE_QUEUE_FULL'
}

/** The engine's own refusals that no later run can change: the job ends dead at once. */
const JOB_FAULTS = new Set(['WORKFLOW_NOT_FOUND', 'UNKNOWN_MACHINE', 'MACHINE_VERSION_UNSUPPORTED'])
const jobFault = (err: unknown) => err instanceof EngineError && JOB_FAULTS.has(err.code)

/**
 * Committing a finished run's outcome through a database blip (about 15 s of tries) before it is
 * left to its lease; jittered, so runs that failed together do not retry together.
 */
const COMMIT_RETRY: RetryPolicy = { maxAttempts: 12, baseDelayMs: 100, maxDelayMs: 2_000 }

function report({ observers }: RunContext, { job }: Run, outcome: JobOutcome['outcome'], durationMs: number, error?: SafeError) {
  const name = job.kind === 'effect' ? job.src : job.name
  const o: JobOutcome = { kind: job.kind, name, machine: job.machine, outcome, durationMs, ...(error && { error }) }
  observers.forEach((fn) => fn(o))
}

/** Sends a run's outcome to its workflow, fenced by the run's lease. */
const deliver = (core: EngineCore, run: Run, event: AnyEvent, attempt: jobStore.AttemptRecord, status?: 'dead') =>
  core.send(run.job.workflowId, event, {
    source: run.job.kind === 'effect' ? `effect:${run.job.name}` : 'timer',
    job: { lease: run.lease, attempt, status },
  })

const failure = (job: RunnableJob, error: SafeError): AnyEvent =>
  ({ type: `xstate.error.actor.${job.name}`, error: { ...error, attempts: job.attempts } })

/** Commits a finished run's outcome, riding out database blips; gives up once the run is lost. */
async function settle<T>(core: EngineCore, run: Run, write: () => Promise<T>): Promise<T | undefined> {
  if (run.lost) return undefined
  try {
    return await retry(write, {
      policy: COMMIT_RETRY, retryIf: transient, signal: run.abort.signal,
      onRetry: (err, tries) => core.log.warn({ ...logFields(run), err: toSafeError(err), tries }, 'could not commit the outcome; retrying'),
    })
  } catch (err) {
    // Lost meanwhile (its lease, a cancel): its outcome must not land, and it is no failure of its own.
    if (run.lost) return undefined
    throw err
  }
}

/** Gives a job up for good: the machine hears of it as an effect failure; the job ends dead. */
async function bury(ctx: RunContext, run: Run, error: SafeError) {
  const { core } = ctx
  core.log.error({ ...logFields(run), error }, 'job cannot run: it ends dead')
  const attempt = { attempt: run.job.attempts, outcome: 'failed' as const, started_at: core.now(), error }
  if (run.job.kind === 'effect') await settle(core, run, () => deliver(core, run, failure(run.job, error), attempt, 'dead'))
  else await settle(core, run, () => jobStore.killJob(core.sql, run.lease, error, core.now()))
  report(ctx, run, 'dead', 0, error)
}

async function runEffect(ctx: RunContext, run: Run & { job: LocalJob }) {
  const { core } = ctx
  const { job, lease } = run
  const def = core.definition(job.machine)
  const logic = (def.machine.implementations.actors as Record<string, AnyActorLogic>)[job.src]
  const started = core.now()
  const elapsed = () => core.now().getTime() - started.getTime()
  const attempt = (outcome: jobStore.AttemptRecord['outcome'], error: SafeError | null = null) =>
    ({ attempt: job.attempts, outcome, started_at: started, error })
  let result: { output: unknown } | { error: unknown }
  try {
    if (!logic) {
      const message = `no actor ${job.src} is registered`
      throw Object.assign(new Error(message), { code: 'EFFECT_UNKNOWN', retryable: false })
    }
    const timeoutMs = ctx.effectTimeoutMs ?? def.effectTimeoutMs ?? 30_000
    const input = withRunInfo(job.input, job.attempts, `${job.workflowId}:${job.id}`)
    result = { output: await runActor(logic, input, timeoutMs, run.abort.signal) }
  } catch (error) {
    result = { error }
  }
  if (run.lost) {
    // Lost lease, a cancel, or shutdown: another run (or nobody) owns this job now.
    core.log.info({ ...logFields(run), why: run.lost }, 'effect run ended without its job; outcome discarded')
    report(ctx, run, 'rejected', elapsed())
    return
  }
  // The outcome is kept from here on: a failed commit is retried, never the effect.
  if ('output' in result) {
    const done = { type: `xstate.done.actor.${job.name}`, output: result.output }
    const r = await settle(core, run, () => deliver(core, run, done, attempt('ok')))
    report(ctx, run, r?.accepted ? 'ok' : 'rejected', elapsed())
    return
  }
  const error = toSafeError(result.error)
  const retry = retryPolicy(core, job.machine)
  const log = { ...logFields(run), effect: job.src, error }
  if (error.retryable !== false && job.attempts < retry.maxAttempts) {
    const runAt = new Date(core.now().getTime() + backoffDelay(job.attempts, retry, error.retryAfterMs))
    core.log.warn({ ...log, retryAt: runAt }, 'effect failed; will retry')
    const kept = await settle(core, run, () => jobStore.retryJob(core.sql, lease, runAt, core.now(), attempt('retry', error)))
    if (kept) ctx.wakeAt(runAt)
    report(ctx, run, kept ? 'retry' : 'rejected', elapsed(), error)
    return
  }
  core.log.warn(log, 'effect failed for good')
  await settle(core, run, () => deliver(core, run, failure(job, error), attempt('failed', error)))
  report(ctx, run, 'failed', elapsed(), error)
}

async function fireTimer(ctx: RunContext, run: Run & { job: TimerJob }) {
  const { core } = ctx
  const { job } = run
  const started = core.now()
  const attempt = { attempt: job.attempts, outcome: 'ok' as const, started_at: started, error: null }
  const r = await settle(core, run, () => deliver(core, run, job.event as AnyEvent, attempt))
  report(ctx, run, r?.accepted ? 'ok' : 'rejected', core.now().getTime() - started.getTime())
}

/** A claimed row as a job; poison (no machine, no readable payload, no budget left) ends dead. */
export function readClaimed(core: EngineCore, row: jobStore.JobRow): { job: RunnableJob; poison?: SafeError } {
  const { id, machine, name, attempts } = row
  const base = { id, workflowId: row.workflow_id, machine, name, attempts }
  let job: RunnableJob | undefined
  let poison: SafeError | undefined
  try {
    const budget = row.kind === 'timer' ? TIMER_ATTEMPTS : retryPolicy(core, row.machine).maxAttempts
    if (row.attempts > budget) {
      const message = `claimed ${row.attempts} times; its budget is ${budget} runs`
      poison = { code: 'ATTEMPTS_EXHAUSTED', message, retryable: false }
    }
    job = row.kind === 'timer'
      ? { ...base, kind: 'timer', event: row.event as EventObject }
      : { ...base, kind: 'effect', src: row.src!, input: undefined }
    if (!poison && job.kind === 'effect') job.input = JSON.parse(core.sealer.open(row.payload!))
  } catch (err) {
    const e = err as { code?: string }
    poison = e.code === 'UNKNOWN_MACHINE'
      ? { code: 'UNKNOWN_MACHINE', message: `no machine named ${row.machine} is registered`, retryable: false }
      : { code: 'PAYLOAD_UNREADABLE', message: 'its payload could not be opened (a retired key?)', retryable: false }
  }
  return { job: job ?? { ...base, kind: 'timer', event: { type: 'xstate.none' } }, poison }
}

/** Runs an effect or fires a timer; a job read as poison (`readClaimed`) ends dead instead. */
export function runJob(ctx: RunContext, run: Run, poison?: SafeError): Promise<void> {
  const { core } = ctx
  if (poison) {
    // Without its machine the workflow cannot hear of it: the job alone ends dead.
    const error = poison
    return poison.code === 'UNKNOWN_MACHINE' ? jobStore.killJob(core.sql, run.lease, error, core.now()).then(() => {
      core.log.error({ ...logFields(run), error }, 'job cannot run: it ends dead')
    }) : bury(ctx, run, error)
  }
  return run.job.kind === 'timer'
    ? fireTimer(ctx, run as Run & { job: TimerJob })
    : runEffect(ctx, run as Run & { job: LocalJob })
}

/** A run that threw: unless it lost its job, its lease runs out or, for a fault of the job, the job ends dead. */
export async function runFailed(core: EngineCore, run: Run, err: unknown) {
  if (run.lost) return
  if (!jobFault(err)) {
    // Weather (a database blip) or a fault we cannot name: the lease stays, and once it runs
    // out the job is claimed and run again, until its attempt budget says otherwise.
    const level = transient(err) ? 'warn' : 'error'
    core.log[level]({ ...logFields(run), err: toSafeError(err) }, 'job run failed; lease left to expire')
    return
  }
  // A fault of this job the engine names (its workflow gone, its machine unknown): never retried.
  await jobStore.killJob(core.sql, run.lease, toSafeError(err), core.now()).catch(() => {})
  core.log.error({ ...logFields(run), err: toSafeError(err) }, 'job run failed; the job ends dead')
}
