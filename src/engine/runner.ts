import type { EngineCore } from './engine.ts'
import { toSafeError, type SafeError } from './errors.ts'
import * as jobStore from './job-store.ts'
import { readClaimed, runFailed, runJob, type RunContext } from './job-executor.ts'
import type { EndedJobs, LocalJob } from './jobs.ts'
import type { JobOutcome, Run } from './job-run.ts'
import { createJobScheduler } from './job-scheduler.ts'
import { createLeaseKeeper } from './lease-keeper.ts'

export type { JobOutcome } from './job-run.ts'

export interface RunnerOptions {
  pollMs?: number
  /**
   * Jobs run at once by this process, at most (64): local and claimed ones share the budget. Effects
   * mostly wait on a remote call; an effect committed while every effect slot is busy is handed
   * back to the queue, which costs two statements and two row versions before it runs.
   */
  concurrency?: number
  effectTimeoutMs?: number
  /** How often the leases of running jobs are renewed (default: a quarter of the lease). */
  heartbeatMs?: number
}

/**
 * Runs effects and fires timers. Jobs this process just committed run at once (the fast path);
 * the poll loop claims everything else that is due, including jobs whose runner died and whose
 * lease ran out, with `for update skip locked`, so any number of processes can share the queue.
 *
 * Liveness: a lease is short and renewed by a heartbeat while its run lasts, on the database's
 * clock, so a dead instance's work is taken over within a lease and an effect may still take as
 * long as its own timeout. A run that loses its job (lease taken over, job cancelled, shutdown)
 * has its signal aborted, and every write of its outcome is fenced by owner and lease epoch.
 *
 * Its parts: the lease keeper holds the runs and renews their leases (lease-keeper.ts), the
 * scheduler claims due jobs within the concurrency (job-scheduler.ts), the executor runs them and
 * commits what they ended in (job-executor.ts). This composes them, starts the fast path's jobs
 * and shuts down.
 */
export function createJobRunner(core: EngineCore, opts: RunnerOptions = {}) {
  const pollMs = opts.pollMs ?? 1_000
  const concurrency = Math.max(2, opts.concurrency ?? 64)
  // Timers are quick and time-critical (the code deadline): slow effects never take their slots.
  const effectSlots = concurrency - Math.max(1, Math.floor(concurrency / 4))
  const keeper = createLeaseKeeper(core, opts.heartbeatMs ?? Math.max(100, Math.floor(core.leaseMs / 4)))
  const scheduler = createJobScheduler(core, keeper, { pollMs, concurrency, effectSlots, start: startClaimed })
  const observers = new Set<(o: JobOutcome) => void>()
  const ctx: RunContext = { core, effectTimeoutMs: opts.effectTimeoutMs, observers, wakeAt: scheduler.wakeAt }
  /** Runs, and leases being handed back: what shutdown waits for. */
  const inFlight = new Set<Promise<void>>()

  /** Runs a job this process holds; once it ends, its lease is dropped and its slot is free. */
  function track(run: Run, poison?: SafeError) {
    const done = runJob(ctx, run, poison)
      .catch((err) => runFailed(core, run, err))
      .finally(() => {
        keeper.drop(run)
        inFlight.delete(done)
        scheduler.ended(run)
      })
    inFlight.add(done)
  }

  function startClaimed(row: jobStore.JobRow) {
    const { job, poison } = readClaimed(core, row)
    track(keeper.hold(job), poison)
  }

  /** Gives jobs leased here back to the queue at once, for any instance to claim. */
  function handBack(runs: LocalJob[], failed: string) {
    const handBack = jobStore.releaseLeases(core.sql, core.owner, core.now(), runs, core.wakeups.enabled).then(
      () => {},
      (err) => core.log.warn({ err: toSafeError(err) }, failed),
    )
    inFlight.add(handBack)
    void handBack.finally(() => inFlight.delete(handBack))
  }

  core.setLocalRunner((jobs, ended) => {
    if (ended) {
      for (const run of keeper.runs.values()) if (endedBy(run, ended, jobs)) keeper.lose(run, 'cancelled by a transition')
    }
    if (!jobs.length) return
    if (scheduler.stopping) {
      // Committed while shutting down: hand them to another instance now, not after the lease.
      handBack(jobs, 'could not hand back jobs committed during shutdown')
      return
    }
    // What a free slot can start runs now. The rest goes back to the queue at once, for any
    // instance to claim: kept leased here, it would wait on this busy process while idle ones
    // could not take it.
    const free = scheduler.freeEffectSlots()
    for (const job of jobs.slice(0, free)) track(keeper.hold(job))
    const rest = jobs.slice(free)
    if (!rest.length) return
    scheduler.handedBack()
    handBack(rest, 'could not hand back jobs without a slot: their leases run out')
  })

  return {
    tick: scheduler.tick,
    start() {
      scheduler.start()
    },
    /**
     * Lets running jobs finish within `graceMs` (their leases still renewed), aborts those that
     * do not, then hands this process's leases back so another instance takes them at once.
     */
    async stop(graceMs = 10_000) {
      scheduler.stop()
      await settledWithin(inFlight, graceMs)
      if (keeper.runs.size) {
        core.log.warn({ jobs: keeper.runs.size }, 'shutdown grace over: aborting running jobs')
        for (const run of keeper.runs.values()) keeper.lose(run, 'shutdown')
        await settledWithin(inFlight, 1_000)
      }
      keeper.stop()
      await core.wakeups.stop()
      await releaseAllLeases(core)
    },
    /** Resolves when nothing is running in this process (tests). */
    async idle() {
      // A tick elsewhere (the poll loop) may be claiming a job this one skipped as locked.
      while (inFlight.size || scheduler.ticks.size) await Promise.allSettled([...inFlight, ...scheduler.ticks])
    },
    onOutcome(fn: (o: JobOutcome) => void) {
      observers.add(fn)
      return () => observers.delete(fn)
    },
  }
}

export type JobRunner = ReturnType<typeof createJobRunner>

/**
 * Whether a commit ended this run's job: a timer job it cancelled, or an effect of its workflow
 * no longer invoked or started again, other than the one whose result it is and those it started.
 */
function endedBy({ job }: Run, ended: EndedJobs, started: LocalJob[]) {
  if (job.kind === 'timer') return ended.timers.includes(job.id)
  return job.workflowId === ended.workflowId && job.id !== ended.resultOf && !ended.live.includes(job.name)
    && !started.some((s) => s.id === job.id)
}

/** Waits until what is in flight now has settled, or `ms` have passed. */
async function settledWithin(inFlight: Set<Promise<void>>, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([Promise.allSettled([...inFlight]), new Promise((r) => (timer = setTimeout(r, ms)))])
  clearTimeout(timer)
}

/** Hands back every lease this process holds, so another instance takes its jobs at once. */
async function releaseAllLeases(core: EngineCore) {
  try {
    const released = await jobStore.releaseLeases(core.sql, core.owner, core.now(), undefined, core.wakeups.enabled)
    if (released) core.log.info({ released }, 'released job leases for other instances')
  } catch (err) {
    // Without the database the leases simply run out; other instances take the jobs then.
    core.log.warn({ err: toSafeError(err) }, 'could not release job leases')
  }
}
