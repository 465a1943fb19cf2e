import type { RecentRows } from './recent.ts'
import type { Wakeups } from './wakeups.ts'
import { toWorkflow, type AnyEvent, type SendResult, type TransitionListener, type Workflow } from './workflow.ts'

/**
 * An event a caller in this process waits to send once `done` holds (`waitAndSend`). The write
 * of the event that makes `done` hold carries it along when this process applies that event.
 */
export interface FollowUp {
  done: (w: Workflow) => boolean
  next: (w: Workflow) => AnyEvent | undefined
  source: string
  signal?: AbortSignal
  /** Set when a write takes the follow-up up; resolves (never rejects) once it landed or failed. */
  writing?: Promise<void>
  /** The follow-up's outcome, once a write carrying it landed. */
  sent?: SendResult
}

export interface WaitForDeps {
  /** This process, as its NOTIFY payloads name it. */
  owner: string
  recent: RecentRows
  wakeups: Wakeups
  get: (id: string) => Promise<Workflow | undefined>
  onTransition: (listener: TransitionListener) => () => unknown
}

export type WaitFor = ReturnType<typeof makeWaitFor>

export interface WaitAndSendDeps {
  /** Follow-ups waiting in this process, by workflow: one each (`send` reads them). */
  followUps: Map<string, FollowUp>
  waitFor: WaitFor
  send: (id: string, event: AnyEvent, o: { source: string }) => Promise<SendResult>
}

/**
 * Runs `read` one at a time: under a slow database, polls and wake-ups wait their turn instead of
 * piling up reads of the same row. A call during a read asks for one more after it, unless `over()`.
 */
function oneAtATime(read: () => Promise<void>, over: () => boolean) {
  let reading = false
  let again = false
  return {
    busy: () => reading,
    async run() {
      if (reading) {
        again = true
        return
      }
      reading = true
      try {
        do {
          again = false
          await read()
        } while (again && !over())
      } finally {
        reading = false
      }
    },
  }
}

/** The engine's `waitFor`. */
export function makeWaitFor(deps: WaitForDeps) {
  const { owner, recent, wakeups, get, onTransition } = deps
  /**
   * Resolves once `done(workflow)` holds, or with the latest workflow after `timeoutMs`.
   * Local commits wake it at once, another instance's job results through NOTIFY (when
   * listening); polling covers the rest.
   */
  return async function waitFor(
    id: string, done: (w: Workflow) => boolean, timeoutMs: number, pollMs = 250, signal?: AbortSignal,
  ): Promise<Workflow | undefined> {
    // A caller usually waits right after its own send, for an effect this process runs: its
    // commit wakes us, so this process's last view saves a read. Another process's progress
    // shows at the first poll.
    const known = recent.get(id)
    let latest = known ? toWorkflow(known) : await get(id)
    if (!latest || done(latest)) return latest
    return new Promise((resolve, reject) => {
      let settled = false
      /** `done(w)`; a caller's predicate that throws ends the wait with its error, never the process. */
      const holds = (w: Workflow) => {
        try {
          return done(w)
        } catch (err) {
          end(() => reject(err))
          return false
        }
      }
      const check = oneAtATime(async () => {
        const w = await get(id).catch(() => undefined)
        if (w && w.version >= (latest?.version ?? 0)) latest = w
        if (w && holds(w)) finish(w)
      }, () => settled)
      void wakeups.start()
      // `w:<id>:<writer>`. This process's own writes reach `onLocal` once committed: reading the
      // row again on their NOTIFY (which may arrive first) would only repeat what it tells.
      const unwake = wakeups.on((payload) => {
        if (payload.startsWith(`w:${id}:`) && payload !== `w:${id}:${owner}`) void check.run()
      })
      const end = (settle: () => void) => {
        if (settled) return
        settled = true
        unwake()
        unlisten()
        clearTimeout(deadline)
        clearInterval(poll)
        settle()
      }
      const finish = (w: Workflow | undefined) => end(() => resolve(w))
      const onLocal = (w: Workflow) => {
        if (w.id !== id) return
        latest = w
        if (holds(w)) finish(w)
      }
      const unlisten = onTransition(onLocal)
      const deadline = setTimeout(() => finish(latest), timeoutMs)
      const poll = setInterval(() => {
        if (!check.busy()) void check.run()
      }, pollMs)
      // Whoever waited is gone (a browser that left the page): stop at once, polls and all.
      if (signal?.aborted) finish(latest)
      signal?.addEventListener('abort', () => finish(latest), { once: true })
    })
  }
}

/** The engine's `waitAndSend`. */
export function makeWaitAndSend(deps: WaitAndSendDeps) {
  const { followUps, waitFor, send } = deps
  /**
   * Waits (bounded, as `waitFor`) until `done` holds, then sends `next(workflow)` if that names an
   * event. When this process applies the event that makes `done` hold (an effect's result, run
   * here: the usual case), the follow-up goes in that same write: one commit and one row version
   * instead of two, and no instance ever sees the state in between. `signal` ends the wait early,
   * and a wait so ended sends nothing. One follow-up per workflow rides along; another caller's
   * is sent after the wait, as is one whose wait another instance's progress ended.
   */
  return async function waitAndSend(
    id: string, done: (w: Workflow) => boolean, next: (w: Workflow) => AnyEvent | undefined,
    o: { source: string; timeoutMs: number; signal?: AbortSignal },
  ): Promise<{ workflow: Workflow | undefined; sent?: SendResult }> {
    const follow: FollowUp = { done, next, source: o.source, signal: o.signal }
    if (!followUps.has(id)) followUps.set(id, follow)
    let workflow: Workflow | undefined
    try {
      workflow = await waitFor(id, (w) => follow.sent !== undefined || done(w), o.timeoutMs, undefined, o.signal)
    } finally {
      // In the tick the wait ends: from here no write takes the follow-up up; one that did is awaited.
      if (followUps.get(id) === follow) followUps.delete(id)
    }
    await follow.writing
    if (follow.sent) return { workflow: follow.sent.workflow, sent: follow.sent }
    const event = workflow && done(workflow) && !o.signal?.aborted ? next(workflow) : undefined
    if (!event) return { workflow }
    const sent = await send(id, event, { source: o.source })
    return { workflow: sent.workflow, sent }
  }
}
