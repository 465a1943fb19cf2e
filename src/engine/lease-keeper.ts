import type { EngineCore } from './engine.ts'
import { toSafeError } from './errors.ts'
import { logFields, type Run, type RunnableJob } from './job-run.ts'
import { renewLeases } from './job-store.ts'

/**
 * The runs this process holds and their leases. A lease is short and renewed by a heartbeat
 * while its run lasts, on the database's clock, so a dead instance's work is taken over within
 * a lease and an effect may still take as long as its own timeout. A run that loses its job
 * (lease taken over, job cancelled, shutdown) has its signal aborted.
 */
export function createLeaseKeeper(core: EngineCore, heartbeatMs: number) {
  const unconfirmedLimitMs = Math.max(core.leaseMs - heartbeatMs, core.leaseMs / 2)
  const runs = new Map<string, Run>()
  let heartbeat: ReturnType<typeof setTimeout> | undefined
  let watchdog: ReturnType<typeof setInterval> | undefined

  function lose(run: Run, why: string) {
    if (run.lost) return
    run.lost = why
    core.log.warn({ ...logFields(run), why }, 'job run lost its job: aborting it, its outcome will not land')
    run.abort.abort(why)
  }

  async function beat() {
    const held = [...runs.values()].filter((r) => !r.lost)
    if (held.length) {
      // The renewal counts from when it was sent: the database's lease may start no later.
      const sentAt = performance.now()
      try {
        const renewed = await renewLeases(core.leaseSql, core.owner, held.map((r) => r.lease), core.leaseMs)
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

  return {
    /** The runs this process holds, by job id. */
    runs: runs as ReadonlyMap<string, Run>,
    running: (kind: 'effect' | 'timer') => [...runs.values()].filter((r) => r.job.kind === kind).length,
    /** A job this process leased (just committed, or claimed) as a run, its lease renewed while it lasts. */
    hold(job: RunnableJob): Run {
      const lease = { id: job.id, workflowId: job.workflowId, kind: job.kind, name: job.name, owner: core.owner, epoch: job.attempts }
      const run: Run = { job, lease, abort: new AbortController(), confirmedAt: performance.now() }
      runs.set(job.id, run)
      keepBeating()
      return run
    },
    /** A run ended: its lease is renewed no more. */
    drop(run: Run) {
      runs.delete(run.lease.id)
    },
    lose,
    /** Shutdown: no more renewals; the leases are handed back, or run out. */
    stop() {
      clearTimeout(heartbeat)
      heartbeat = undefined
      clearInterval(watchdog)
      watchdog = undefined
      runs.clear()
    },
  }
}

export type LeaseKeeper = ReturnType<typeof createLeaseKeeper>
