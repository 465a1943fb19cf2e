import { createActor, toPromise, type AnyActorLogic, type EventObject } from 'xstate'
import { isDatabaseUnavailable, isTransientDatabaseError } from './pg.ts'
import { backoffDelay, defaultRetryPolicy } from './backoff.ts'
import type { RetryPolicy } from './types.ts'
import type { AnyEvent, EngineCore, LocalJob } from './engine.ts'
import { EngineError, toSafeError, type SafeError } from './errors.ts'
import { abortableSleep } from './helpers.ts'
import * as store from './store.ts'

export interface RunnerOptions {
  pollMs?: number
  /** Jobs run at once by this process, at most: local and claimed ones share the budget. */
  concurrency?: number
  effectTimeoutMs?: number
  /** How often the leases of running jobs are renewed (default: a quarter of the lease). */
  heartbeatMs?: number
}

/** What a job run ended in, for metrics. */
export interface JobOutcome {
  kind: 'effect' | 'timer'
  name: string
  machine: string
  outcome: 'ok' | 'retry' | 'failed' | 'rejected' | 'dead'
  durationMs: number
  error?: SafeError
}

type TimerJob = Omit<LocalJob, 'kind' | 'src' | 'input'> & { kind: 'timer'; event: EventObject }
type RunnableJob = LocalJob | TimerJob

/** One run of a job this process holds: its lease, and the signal that ends it. */
interface Run {
  job: RunnableJob
  lease: store.JobLease
  abort: AbortController
  /** Why the run lost its job (lease lost, cancelled, shutdown): its outcome must not land. */
  lost?: string
  /** When the database last confirmed the lease (this process's monotonic clock). */
  confirmedAt: number
}

class EffectTimeout extends Error {
  code = 'EFFECT_TIMEOUT'
  retryable = true
}

class EffectInterrupted extends Error {
  code = 'EFFECT_INTERRUPTED'
  retryable = true
}

/** Claims that ran out (crashes, lost leases, shutdowns) before a timer is given up on. */
const TIMER_ATTEMPTS = 10
/** Tries to commit a finished run's outcome through a database blip before leaving it to its lease. */
const COMMIT_TRIES = 12

/**
 * An effect's input as the machine gave it, plus which run this is (1 right after the transition
 * that started it, more after a retry, a crash or a shutdown: a first run may skip checks for
 * work an earlier run left behind) and a key that is the same for every run of this job, for
 * the effect to make its outside work idempotent.
 */
const withRunInfo = (input: unknown, attempt: number, idempotencyKey: string) =>
  input && typeof input === 'object' && !Array.isArray(input) ? { ...input, attempt, idempotencyKey } : input

async function runActor(logic: AnyActorLogic, input: unknown, timeoutMs: number, signal: AbortSignal) {
  if (signal.aborted) throw new EffectInterrupted(`effect aborted before it started: ${String(signal.reason)}`)
  const actor = createActor(logic, { input })
  const result = toPromise(actor)
  result.catch(() => {}) // an effect that fails after we stopped waiting is not an unhandled rejection
  let timer: ReturnType<typeof setTimeout> | undefined
  let onAbort = () => {}
  const ended = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new EffectTimeout(`effect did not finish within ${timeoutMs} ms`)), timeoutMs)
    onAbort = () => reject(new EffectInterrupted(`effect aborted: ${String(signal.reason)}`))
    signal.addEventListener('abort', onAbort, { once: true })
  })
  actor.start()
  try {
    const output = await Promise.race([result, ended])
    // A stopped actor also "completes", with no output: only `done` is a success.
    if (actor.getSnapshot().status !== 'done') throw new EffectInterrupted('effect was stopped before it finished')
    return output
  } finally {
    clearTimeout(timer)
    signal.removeEventListener('abort', onAbort)
    actor.stop() // aborts the effect's own `signal` if it is still running
  }
}

/** The database's weather, and the engine's own refusals that pass with it (contention, a full write queue). */
const transient = (err: unknown) => {
  const code = (err as { code?: unknown } | null)?.code
  return isTransientDatabaseError(err) || code === 'WRITE_CONTENTION' || code === 'WRITE_QUEUE_FULL'
}

/** The engine's own refusals that no later run can change: the job ends dead at once. */
const JOB_FAULTS = new Set(['WORKFLOW_NOT_FOUND', 'UNKNOWN_MACHINE', 'MACHINE_VERSION_UNSUPPORTED'])
const jobFault = (err: unknown) => err instanceof EngineError && JOB_FAULTS.has(err.code)

/** Between commit tries: jittered, so runs that failed together do not retry together. */
const COMMIT_BACKOFF: RetryPolicy = { maxAttempts: COMMIT_TRIES, baseDelayMs: 50, maxDelayMs: 2_000 }

/**
 * Runs effects and fires timers. Jobs this process just committed run at once (the fast path);
 * the poll loop claims everything else that is due, including jobs whose runner died and whose
 * lease ran out, with `for update skip locked`, so any number of processes can share the queue.
 *
 * Liveness: a lease is short and renewed by a heartbeat while its run lasts, on the database's
 * clock, so a dead instance's work is taken over within a lease and an effect may still take as
 * long as its own timeout. A run that loses its job (lease taken over, job cancelled, shutdown)
 * has its signal aborted, and every write of its outcome is fenced by owner and lease epoch.
 */
export function createJobRunner(core: EngineCore, opts: RunnerOptions = {}) {
  const pollMs = opts.pollMs ?? 1_000
  const concurrency = Math.max(2, opts.concurrency ?? 16)
  // Timers are quick and time-critical (the code deadline): slow effects never take their slots.
  const effectSlots = concurrency - Math.max(1, Math.floor(concurrency / 4))
  const heartbeatMs = opts.heartbeatMs ?? Math.max(100, Math.floor(core.leaseMs / 4))
  const unconfirmedLimitMs = Math.max(core.leaseMs - heartbeatMs, core.leaseMs / 2)
  /** How long the poll loop waits on one tick before polling on: a claim that hangs stalls nothing. */
  const tickDeadlineMs = Math.max(pollMs, 10_000)
  const inFlight = new Set<Promise<void>>()
  const runs = new Map<string, Run>()
  /** Set when effects committed here were handed back for want of a slot: a freed slot claims again. */
  let handedBack = false
  const observers = new Set<(o: JobOutcome) => void>()
  let stopping = false
  let pollTimer: ReturnType<typeof setTimeout> | undefined
  let heartbeat: ReturnType<typeof setTimeout> | undefined
  let watchdog: ReturnType<typeof setInterval> | undefined
  const wakeTimers = new Set<ReturnType<typeof setTimeout>>()
  let unwake = () => {}

  const policy = (machine: string): RetryPolicy => ({ ...defaultRetryPolicy, ...core.definition(machine).retry })
  const running = (kind: 'effect' | 'timer') => [...runs.values()].filter((r) => r.job.kind === kind).length
  const logFields = ({ job }: Run) =>
    ({ workflowId: job.workflowId, jobId: job.id, job: job.name, attempt: job.attempts })
  const report = ({ job }: Run, outcome: JobOutcome['outcome'], durationMs: number, error?: SafeError) => {
    const name = job.kind === 'effect' ? job.src : job.name
    const o: JobOutcome = { kind: job.kind, name, machine: job.machine, outcome, durationMs, ...(error && { error }) }
    observers.forEach((fn) => fn(o))
  }
  /** Sends a run's outcome to its workflow, fenced by the run's lease. */
  const deliver = (run: Run, event: AnyEvent, attempt: store.AttemptRecord, status?: 'dead') =>
    core.send(run.job.workflowId, event, {
      source: run.job.kind === 'effect' ? `effect:${run.job.name}` : 'timer',
      job: { lease: run.lease, attempt, status },
    })
  const failure = (job: RunnableJob, error: SafeError): AnyEvent =>
    ({ type: `xstate.error.actor.${job.name}`, error: { ...error, attempts: job.attempts } })

  function lose(run: Run, why: string) {
    if (run.lost) return
    run.lost = why
    core.log.warn({ ...logFields(run), why }, 'job run lost its job: aborting it, its outcome will not land')
    run.abort.abort(why)
  }

  // ---- heartbeat ----------------------------------------------------------------------------

  async function beat() {
    const held = [...runs.values()].filter((r) => !r.lost)
    if (held.length) {
      // The renewal counts from when it was sent: the database's lease may start no later.
      const sentAt = performance.now()
      try {
        const leases = held.map((r) => ({ id: r.lease.id, epoch: r.lease.epoch }))
        const renewed = await store.renewLeases(core.leaseSql, core.owner, leases, core.leaseMs)
        for (const run of held) {
          if (renewed.has(run.lease.id)) run.confirmedAt = sentAt
          else if (runs.has(run.lease.id)) lose(run, 'lease lost: the job was cancelled or taken over')
        }
      } catch (err) {
        core.log.warn({ err: toSafeError(err) }, 'lease heartbeat failed')
      }
    }
  }

  /**
   * Unconfirmed for nearly a whole lease: by the next beat another instance may hold the job.
   * Stop it before then, so nothing it does can land after. On a timer of its own, never after
   * a renewal returns: a renewal that hangs must not switch this check off.
   */
  function checkLeases() {
    for (const run of runs.values()) {
      if (performance.now() - run.confirmedAt > unconfirmedLimitMs) lose(run, 'lease not renewed in time')
    }
    if (!runs.size) {
      clearInterval(watchdog)
      watchdog = undefined
    }
  }

  function keepBeating() {
    if (!runs.size) return
    watchdog ??= setInterval(checkLeases, heartbeatMs)
    if (heartbeat) return
    heartbeat = setTimeout(async () => {
      await beat()
      heartbeat = undefined
      keepBeating()
    }, heartbeatMs)
  }

  // ---- running jobs -------------------------------------------------------------------------

  /** Commits a finished run's outcome, riding out database blips; gives up once the run is lost. */
  async function settle<T>(run: Run, write: () => Promise<T>): Promise<T | undefined> {
    for (let tries = 1; ; tries++) {
      if (run.lost) return undefined
      try {
        return await write()
      } catch (err) {
        if (!transient(err) || tries >= COMMIT_TRIES) throw err
        core.log.warn({ ...logFields(run), err: toSafeError(err), tries }, 'could not commit the outcome; retrying')
        await abortableSleep(backoffDelay(tries + 1, COMMIT_BACKOFF), run.abort.signal)
      }
    }
  }

  /** Gives a job up for good: the machine hears of it as an effect failure; the job ends dead. */
  async function bury(run: Run, error: SafeError) {
    core.log.error({ ...logFields(run), error }, 'job cannot run: it ends dead')
    const attempt = { attempt: run.job.attempts, outcome: 'failed' as const, started_at: core.now(), error }
    if (run.job.kind === 'effect') await settle(run, () => deliver(run, failure(run.job, error), attempt, 'dead'))
    else await settle(run, () => store.killJob(core.sql, run.lease, error, core.now()))
    report(run, 'dead', 0, error)
  }

  async function runEffect(run: Run & { job: LocalJob }) {
    const { job, lease } = run
    const def = core.definition(job.machine)
    const logic = (def.machine.implementations.actors as Record<string, AnyActorLogic>)[job.src]
    const started = core.now()
    const elapsed = () => core.now().getTime() - started.getTime()
    const attempt = (outcome: store.AttemptRecord['outcome'], error: SafeError | null = null) =>
      ({ attempt: job.attempts, outcome, started_at: started, error })
    let result: { output: unknown } | { error: unknown }
    try {
      if (!logic) {
        const message = `no actor ${job.src} is registered`
        throw Object.assign(new Error(message), { code: 'EFFECT_UNKNOWN', retryable: false })
      }
      const timeoutMs = opts.effectTimeoutMs ?? def.effectTimeoutMs ?? 30_000
      const input = withRunInfo(job.input, job.attempts, `${job.workflowId}:${job.id}`)
      result = { output: await runActor(logic, input, timeoutMs, run.abort.signal) }
    } catch (error) {
      result = { error }
    }
    if (run.lost) {
      // Lost lease, a cancel, or shutdown: another run (or nobody) owns this job now.
      core.log.info({ ...logFields(run), why: run.lost }, 'effect run ended without its job; outcome discarded')
      report(run, 'rejected', elapsed())
      return
    }
    // The outcome is kept from here on: a failed commit is retried, never the effect.
    if ('output' in result) {
      const done = { type: `xstate.done.actor.${job.name}`, output: result.output }
      const r = await settle(run, () => deliver(run, done, attempt('ok')))
      report(run, r?.accepted ? 'ok' : 'rejected', elapsed())
      return
    }
    const error = toSafeError(result.error)
    const retry = policy(job.machine)
    const log = { ...logFields(run), effect: job.src, error }
    if (error.retryable !== false && job.attempts < retry.maxAttempts) {
      const runAt = new Date(core.now().getTime() + backoffDelay(job.attempts, retry, error.retryAfterMs))
      core.log.warn({ ...log, retryAt: runAt }, 'effect failed; will retry')
      const kept = await settle(run, () => store.retryJob(core.sql, lease, runAt, core.now(), attempt('retry', error)))
      if (kept) wakeAt(runAt)
      report(run, kept ? 'retry' : 'rejected', elapsed(), error)
      return
    }
    core.log.warn(log, 'effect failed for good')
    await settle(run, () => deliver(run, failure(job, error), attempt('failed', error)))
    report(run, 'failed', elapsed(), error)
  }

  async function fireTimer(run: Run & { job: TimerJob }) {
    const { job } = run
    const started = core.now()
    const attempt = { attempt: job.attempts, outcome: 'ok' as const, started_at: started, error: null }
    const r = await settle(run, () => deliver(run, job.event as AnyEvent, attempt))
    report(run, r?.accepted ? 'ok' : 'rejected', core.now().getTime() - started.getTime())
  }

  function track(run: Run, body: () => Promise<void>) {
    const done = body()
      .catch(async (err) => {
        if (run.lost) return
        if (!jobFault(err)) {
          // Weather (a database blip) or a fault we cannot name: the lease stays, and once it runs
          // out the job is claimed and run again, until its attempt budget says otherwise.
          const level = transient(err) ? 'warn' : 'error'
          core.log[level]({ ...logFields(run), err: toSafeError(err) }, 'job run failed; lease left to expire')
          return
        }
        // A fault of this job the engine names (its workflow gone, its machine unknown): never retried.
        await store.killJob(core.sql, run.lease, toSafeError(err), core.now()).catch(() => {})
        core.log.error({ ...logFields(run), err: toSafeError(err) }, 'job run failed; the job ends dead')
      })
      .finally(() => {
        runs.delete(run.lease.id)
        inFlight.delete(done)
        if (handedBack && !stopping && run.job.kind === 'effect') tick().catch(pollFailed)
      })
    inFlight.add(done)
  }

  function hold(job: RunnableJob): Run {
    const lease = { id: job.id, owner: core.owner, epoch: job.attempts }
    const run: Run = { job, lease, abort: new AbortController(), confirmedAt: performance.now() }
    runs.set(job.id, run)
    keepBeating()
    return run
  }

  const startEffect = (run: Run) => track(run, () => runEffect(run as Run & { job: LocalJob }))

  /** A claimed row as a run: poison (no machine, no readable payload, no budget left) ends dead. */
  function startClaimed(row: store.JobRow) {
    const { id, machine, name, attempts } = row
    const base = { id, workflowId: row.workflow_id, machine, name, attempts }
    let job: RunnableJob | undefined
    let poison: SafeError | undefined
    try {
      const budget = row.kind === 'timer' ? TIMER_ATTEMPTS : policy(row.machine).maxAttempts
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
    const run = hold(job ?? { ...base, kind: 'timer', event: { type: 'xstate.none' } })
    if (poison) {
      const unknownMachine = poison.code === 'UNKNOWN_MACHINE'
      // Without its machine the workflow cannot hear of it: the job alone ends dead.
      const error = poison
      track(run, () => (unknownMachine ? store.killJob(core.sql, run.lease, error, core.now()).then(() => {
        core.log.error({ ...logFields(run), error }, 'job cannot run: it ends dead')
      }) : bury(run, error)))
    } else if (run.job.kind === 'timer') {
      track(run, () => fireTimer(run as Run & { job: TimerJob }))
    } else {
      startEffect(run)
    }
  }

  /** Ticks in progress: a claim in flight holds its jobs before they count as running. */
  const ticks = new Set<Promise<number>>()
  let claiming: Promise<number> | undefined
  let nextTick: Promise<number> | undefined
  /**
   * Claims due jobs, one claim at a time: each counts the capacity the one before it filled, so
   * ticks that overlap (the poll, wake-ups, NOTIFY) never run more than `concurrency` jobs. A
   * tick asked for during a claim runs once after it, for every caller that asked.
   */
  function tick(): Promise<number> {
    if (claiming) {
      if (!nextTick) {
        const n = claiming.catch(() => 0).then(() => {
          nextTick = undefined
          return tick()
        })
        nextTick = n
        ticks.add(n)
        void n.finally(() => ticks.delete(n)).catch(() => {})
      }
      return nextTick
    }
    const t = claimDue()
    claiming = t
    ticks.add(t)
    void t.finally(() => {
      ticks.delete(t)
      if (claiming === t) claiming = undefined
    }).catch(() => {})
    return t
  }

  /** Claims due jobs up to the free capacity and starts them. Returns how many it claimed. */
  async function claimDue(): Promise<number> {
    if (stopping) return 0
    const effects = running('effect')
    const limits = {
      effects: Math.max(0, effectSlots - effects),
      timers: Math.max(0, concurrency - effects - running('timer')),
    }
    if (!limits.effects && !limits.timers) return 0
    const now = core.now()
    if (limits.timers) await store.promoteTimers(core.leaseSql, now, limits.timers)
    const rows = await store.claimJobs(core.leaseSql, core.owner, now, core.leaseMs, limits)
    // Fewer due effects than free slots: whatever this process handed back has been taken.
    if (rows.filter((r) => r.kind === 'effect').length < limits.effects) handedBack = false
    rows.forEach(startClaimed)
    return rows.length
  }

  /** A database outage is expected weather, not a bug: the next poll tries again. */
  function pollFailed(err: unknown) {
    if (isDatabaseUnavailable(err)) core.log.warn({ err: toSafeError(err) }, 'job poll failed: database unavailable')
    else core.log.error({ err: toSafeError(err) }, 'job poll failed')
  }

  function wakeAt(at: Date) {
    if (stopping) return
    const timer = setTimeout(() => {
      wakeTimers.delete(timer)
      tick().catch(pollFailed)
    }, Math.max(0, at.getTime() - core.now().getTime()) + 5)
    wakeTimers.add(timer)
    // A wake-up only hastens the poll: it must not keep a process alive on its own.
    ;(timer as { unref?: () => void }).unref?.()
  }

  /** A tick's count of claims, or 0 once it has taken `tickDeadlineMs` (it goes on meanwhile). */
  function withinTickDeadline(t: Promise<number>) {
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<number>((resolve) => {
      timer = setTimeout(() => {
        core.log.warn({ waitedMs: tickDeadlineMs }, 'a job poll went unanswered: polling on')
        resolve(0)
      }, tickDeadlineMs)
    })
    return Promise.race([t, late]).finally(() => clearTimeout(timer))
  }

  function loop() {
    pollTimer = setTimeout(async () => {
      try {
        // Keep claiming while there is a backlog; otherwise wait for the next poll.
        while ((await withinTickDeadline(tick())) > 0 && runs.size < concurrency);
      } catch (err) {
        pollFailed(err)
      }
      if (!stopping) loop()
    }, pollMs)
  }

  core.setLocalRunner((jobs, cancelled) => {
    for (const id of cancelled) {
      const run = runs.get(id)
      if (run) lose(run, 'cancelled by a transition')
    }
    if (!jobs.length) return
    if (stopping) {
      // Committed while shutting down: hand them to another instance now, not after the lease.
      const ids = jobs.map((j) => j.id)
      const handBack = store.releaseLeases(core.sql, core.owner, core.now(), ids, core.wakeups.enabled).then(
        () => {},
        (err) => core.log.warn({ err: toSafeError(err) }, 'could not hand back jobs committed during shutdown'),
      )
      inFlight.add(handBack)
      void handBack.finally(() => inFlight.delete(handBack))
      return
    }
    // What a free slot can start runs now. The rest goes back to the queue at once, for any
    // instance to claim: kept leased here, it would wait on this busy process while idle ones
    // could not take it.
    const free = Math.max(0, effectSlots - running('effect'))
    for (const job of jobs.slice(0, free)) startEffect(hold(job))
    const rest = jobs.slice(free).map((j) => j.id)
    if (!rest.length) return
    handedBack = true
    const handBack = store.releaseLeases(core.sql, core.owner, core.now(), rest, core.wakeups.enabled).then(
      () => {},
      (err) => core.log.warn({ err: toSafeError(err) }, 'could not hand back jobs without a slot: their leases run out'),
    )
    inFlight.add(handBack)
    void handBack.finally(() => inFlight.delete(handBack))
  })

  return {
    tick,
    start() {
      stopping = false
      void core.wakeups.start()
      // Jobs another instance handed back (its shutdown) are claimed at once, not at the next poll.
      unwake = core.wakeups.on((payload) => {
        if (payload === 'j') tick().catch(pollFailed)
      })
      loop()
    },
    /**
     * Lets running jobs finish within `graceMs` (their leases still renewed), aborts those that
     * do not, then hands this process's leases back so another instance takes them at once.
     */
    async stop(graceMs = 10_000) {
      stopping = true
      unwake()
      clearTimeout(pollTimer)
      wakeTimers.forEach(clearTimeout)
      wakeTimers.clear()
      const settled = async (ms: number) => {
        let timer: ReturnType<typeof setTimeout> | undefined
        await Promise.race([Promise.allSettled([...inFlight]), new Promise((r) => (timer = setTimeout(r, ms)))])
        clearTimeout(timer)
      }
      await settled(graceMs)
      if (runs.size) {
        core.log.warn({ jobs: runs.size }, 'shutdown grace over: aborting running jobs')
        for (const run of runs.values()) lose(run, 'shutdown')
        await settled(1_000)
      }
      clearTimeout(heartbeat)
      heartbeat = undefined
      clearInterval(watchdog)
      watchdog = undefined
      runs.clear()
      await core.wakeups.stop()
      try {
        const released = await store.releaseLeases(core.sql, core.owner, core.now(), undefined, core.wakeups.enabled)
        if (released) core.log.info({ released }, 'released job leases for other instances')
      } catch (err) {
        // Without the database the leases simply run out; other instances take the jobs then.
        core.log.warn({ err: toSafeError(err) }, 'could not release job leases')
      }
    },
    /** Resolves when nothing is running in this process (tests). */
    async idle() {
      // A tick elsewhere (the poll loop) may be claiming a job this one skipped as locked.
      while (inFlight.size || ticks.size) await Promise.allSettled([...inFlight, ...ticks])
    },
    onOutcome(fn: (o: JobOutcome) => void) {
      observers.add(fn)
      return () => observers.delete(fn)
    },
  }
}

export type JobRunner = ReturnType<typeof createJobRunner>
