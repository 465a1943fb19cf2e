import { isDatabaseUnavailable } from './pg.ts'
import type { EngineCore } from './engine.ts'
import { toSafeError } from './errors.ts'
import type { Run } from './job-run.ts'
import type { LeaseKeeper } from './lease-keeper.ts'
import * as jobStore from './job-store.ts'

/** How often a poll looks for effect jobs an engine from before migration 005 left in `jobs`. */
const LEGACY_EFFECTS_EVERY_MS = 30_000

interface SchedulerOptions {
  pollMs: number
  concurrency: number
  /** Of `concurrency`, the slots effects may take: the rest are kept for timers. */
  effectSlots: number
  /** Runs a row just claimed. */
  start: (row: jobStore.JobRow) => void
}

/**
 * When jobs are claimed: the poll loop claims everything that is due, including jobs whose runner
 * died and whose lease ran out, with `for update skip locked`, so any number of processes can
 * share the queue; wake-ups (a retry's due time, NOTIFY of jobs handed back elsewhere, a freed
 * slot) claim sooner. Claims stay within the process's concurrency.
 */
export function createJobScheduler(core: EngineCore, keeper: LeaseKeeper, o: SchedulerOptions) {
  const { pollMs, concurrency, effectSlots } = o
  /** How long the poll loop waits on one tick before polling on: a claim that hangs stalls nothing. */
  const tickDeadlineMs = Math.max(pollMs, 10_000)
  /** Set when effects committed here were handed back for want of a slot: a freed slot claims again. */
  let handedBack = false
  let stopping = false
  let pollTimer: ReturnType<typeof setTimeout> | undefined
  const wakeTimers = new Set<ReturnType<typeof setTimeout>>()
  let unwake = () => {}
  const { tick, ticks } = oneClaimAtATime(claimDue)
  const tickSoon = () => {
    tick().catch((err) => pollFailed(core, err))
  }

  /** When the next tick looks for effects an older engine left in `jobs` (this process's monotonic clock). */
  let adoptAt = 0

  /** Claims due jobs up to the free capacity and starts them. Returns how many it claimed. */
  async function claimDue(): Promise<number> {
    if (stopping) return 0
    const effects = keeper.running('effect')
    const limits = {
      effects: Math.max(0, effectSlots - effects),
      timers: Math.max(0, concurrency - effects - keeper.running('timer')),
    }
    if (!limits.effects && !limits.timers) return 0
    const now = core.now()
    if (limits.timers) await jobStore.promoteTimers(core.leaseSql, now, limits.timers)
    // Now and then, not every tick: only an engine from before effects lived in rows leaves them.
    if (limits.effects && performance.now() >= adoptAt) {
      adoptAt = performance.now() + LEGACY_EFFECTS_EVERY_MS
      await jobStore.adoptLegacyEffects(core.leaseSql, now, limits.effects)
    }
    const rows = await jobStore.claimJobs(core.leaseSql, core.owner, now, core.leaseMs, limits)
    // Fewer due effects than free slots: whatever this process handed back has been taken.
    if (rows.filter((r) => r.kind === 'effect').length < limits.effects) handedBack = false
    rows.forEach(o.start)
    return rows.length
  }

  function wakeAt(at: Date) {
    if (stopping) return
    const timer = setTimeout(() => {
      wakeTimers.delete(timer)
      tickSoon()
    }, Math.max(0, at.getTime() - core.now().getTime()) + 5)
    wakeTimers.add(timer)
    // A wake-up only hastens the poll: it must not keep a process alive on its own.
    ;(timer as { unref?: () => void }).unref?.()
  }

  function loop() {
    pollTimer = setTimeout(async () => {
      try {
        // Keep claiming while there is a backlog; otherwise wait for the next poll.
        while ((await withinTickDeadline(core, tick(), tickDeadlineMs)) > 0 && keeper.runs.size < concurrency);
      } catch (err) {
        pollFailed(core, err)
      }
      if (!stopping) loop()
    }, pollMs)
  }

  return {
    tick,
    ticks,
    wakeAt,
    get stopping() {
      return stopping
    },
    /** Effect slots free now, for effects committed here (the fast path). */
    freeEffectSlots: () => Math.max(0, effectSlots - keeper.running('effect')),
    /** Effects committed here went back to the queue for want of a slot. */
    handedBack() {
      handedBack = true
    },
    /** A run ended: if effects were handed back for want of its slot, claim again now. */
    ended(run: Run) {
      if (handedBack && !stopping && run.job.kind === 'effect') tickSoon()
    },
    start() {
      stopping = false
      void core.wakeups.start()
      // Jobs another instance handed back (its shutdown) are claimed at once, not at the next poll.
      unwake = core.wakeups.on((payload) => {
        if (payload === 'j') tickSoon()
      })
      loop()
    },
    /** Claims no more: the poll loop and wake-ups end. */
    stop() {
      stopping = true
      unwake()
      clearTimeout(pollTimer)
      wakeTimers.forEach(clearTimeout)
      wakeTimers.clear()
    },
  }
}

/**
 * Claims due jobs, one claim at a time: each counts the capacity the one before it filled, so
 * ticks that overlap (the poll, wake-ups, NOTIFY) never run more than `concurrency` jobs. A
 * tick asked for during a claim runs once after it, for every caller that asked.
 */
function oneClaimAtATime(claimDue: () => Promise<number>) {
  /** Ticks in progress: a claim in flight holds its jobs before they count as running. */
  const ticks = new Set<Promise<number>>()
  let claiming: Promise<number> | undefined
  let nextTick: Promise<number> | undefined
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
  return { tick, ticks: ticks as ReadonlySet<Promise<number>> }
}

/** A tick's count of claims, or 0 once it has taken `tickDeadlineMs` (it goes on meanwhile). */
function withinTickDeadline(core: EngineCore, t: Promise<number>, tickDeadlineMs: number) {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<number>((resolve) => {
    timer = setTimeout(() => {
      core.log.warn({ waitedMs: tickDeadlineMs }, 'a job poll went unanswered: polling on')
      resolve(0)
    }, tickDeadlineMs)
  })
  return Promise.race([t, late]).finally(() => clearTimeout(timer))
}

/** A database outage is expected weather, not a bug: the next poll tries again. */
function pollFailed(core: EngineCore, err: unknown) {
  if (isDatabaseUnavailable(err)) core.log.warn({ err: toSafeError(err) }, 'job poll failed: database unavailable')
  else core.log.error({ err: toSafeError(err) }, 'job poll failed')
}
