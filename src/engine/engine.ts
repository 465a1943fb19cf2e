import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Sql } from 'postgres'
import type { AnyMachineSnapshot, EventObject } from 'xstate'
import type { WorkflowDefinition } from './definition.ts'
import { machineVersionUnsupported, toSafeError, unknownMachine, workflowNotFound, writeContention } from './errors.ts'
import { redactEvent } from './redact.ts'
import { persist, planEffects, restore, stateName, statePath, stepper, type EffectPlan } from './snapshot.ts'
import * as store from './store.ts'
import { createWakeups } from './wakeups.ts'
import type { Logger, PersistedState } from './types.ts'
import { createWriter } from './writer.ts'

export type { Logger } from './types.ts'

/** Seals effect inputs at rest (they can hold an OAuth code). */
export interface Sealer {
  seal(plaintext: string): string
  open(sealed: string): string
}

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

/** A workflow as callers see it: the persisted state and its bookkeeping, no secrets. */
export interface Workflow {
  id: string
  machine: string
  machineVersion: number
  key: string | null
  state: string
  statePath: string
  reason: string | null
  status: PersistedState['status']
  context: Record<string, unknown>
  version: number
  createdAt: Date
  updatedAt: Date
}

/** One accepted step, as its history row records it (`from` is null for the start). */
export interface TransitionStep {
  event: string
  from: string | null
  to: string
  /** The event as history stores it: secret fields redacted. */
  data: Record<string, unknown>
  /** The context as it stands after this step (a commit of several steps has one per step). */
  context?: Record<string, unknown>
}

export type TransitionListener = (workflow: Workflow, steps: TransitionStep[]) => void

export type SendResult = { accepted: true; workflow: Workflow } | { accepted: false; workflow: Workflow }

/**
 * An event a caller in this process waits to send once `done` holds (`waitAndSend`). The write
 * of the event that makes `done` hold carries it along when this process applies that event.
 */
interface FollowUp {
  done: (w: Workflow) => boolean
  next: (w: Workflow) => AnyEvent | undefined
  source: string
  signal?: AbortSignal
  /** Set when a write takes the follow-up up; resolves (never rejects) once it landed or failed. */
  writing?: Promise<void>
  /** The follow-up's outcome, once a write carrying it landed. */
  sent?: SendResult
}

/** A job this process inserted already leased to itself: run it right after commit. */
export interface LocalJob {
  id: string
  workflowId: string
  machine: string
  kind: 'effect'
  name: string
  src: string
  input: unknown
  attempts: number
}

/** Any event: its payload is the machine's business; secret fields are redacted in history. */
export type AnyEvent = EventObject & Record<string, unknown>

export interface SendOptions {
  /** Who sent it: a route, `timer`, `effect:<name>`, `admin`. Stored in history. */
  source: string
  /** The job run whose result this is: accepted only while that run still holds the job. */
  job?: NonNullable<store.Transition['job']>
  /** Only a workflow of this machine takes the event; any other reads as not found. */
  machine?: string
}

const MAX_WRITE_TRIES = 25
export const DEFAULT_LEASE_MS = 6_000
/**
 * How many workflows' last rows a process keeps to skip the read before a write. A flow's
 * events come close together, so the few hundred flows in flight are what matters; a miss
 * costs one read, while every row kept costs memory for as long as the process lives.
 */
const RECENT_ROWS = 1_000

/** The follow-up's event for `w`, if `w` is what it waits for; a caller's function that throws counts as none. */
function followUpFor(follow: FollowUp, w: Workflow): AnyEvent | undefined {
  try {
    return follow.done(w) ? follow.next(w) : undefined
  } catch {
    return undefined
  }
}

/** This host's name, where the runtime may tell it (Deno asks for a permission). */
const hostName = () => {
  try {
    return hostname()
  } catch {
    return 'host'
  }
}

/** A stored row as callers see it. */
export const toWorkflow = (row: store.WorkflowRow): Workflow => ({
  id: row.id,
  machine: row.machine,
  machineVersion: row.machine_version,
  key: row.key,
  state: row.state,
  statePath: statePath(row.snapshot.value),
  reason: row.reason,
  status: row.snapshot.status,
  context: row.snapshot.context,
  version: row.version,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
})

export function createEngineCore(opts: EngineOptions) {
  const { sql, sealer, log } = opts
  const leaseSql = opts.leaseSql ?? sql
  // Host and pid say which instance holds a job; the random part tells a restarted pid apart.
  const owner = opts.owner ?? `${hostName()}-${process.pid}-${randomUUID().slice(0, 8)}`
  const now = opts.now ?? (() => new Date())
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS
  const definitions = new Map(opts.definitions.map((d) => [d.name, d]))
  const listeners = new Set<TransitionListener>()
  const wakeups = createWakeups(sql, log, opts.listen ?? false)
  // Creates and accepted events of workflows moving at once share a statement and a commit.
  const writer = createWriter(sql, { log, writeTimeoutMs: opts.writeTimeoutMs, maxQueued: opts.maxQueuedWrites, origin: owner })
  /** Rows this process wrote or read last, newest last; bounded. See `send`. */
  const recent = new Map<string, store.WorkflowRow>()
  const remember = (row: store.WorkflowRow) => {
    const { job_held: _ignored, ...plain } = row as store.WorkflowRow & { job_held?: unknown }
    recent.delete(row.id)
    recent.set(row.id, plain)
    if (recent.size > RECENT_ROWS) recent.delete(recent.keys().next().value!)
  }
  /** Follow-ups waiting in this process, by workflow: one each (see `waitAndSend`). */
  const followUps = new Map<string, FollowUp>()
  // Set by the job runner: receives effect jobs this process leased to itself, and the ids of
  // jobs a transition cancelled (a run of one here is aborted).
  let runLocal: (jobs: LocalJob[], cancelled: string[]) => void = () => {}

  const definition = (name: string) => {
    const d = definitions.get(name)
    if (!d) throw unknownMachine(name)
    return d
  }
  const steppers = new Map([...definitions].map(([name, d]) => [name, stepper(d.machine)]))

  /** A stored snapshot as a live one, migrated if an older machine wrote it. */
  const load = (def: WorkflowDefinition, row: store.WorkflowRow): AnyMachineSnapshot => {
    let state = row.snapshot
    if (row.machine_version !== def.version) {
      if (!def.migrate || row.machine_version > def.version) {
        throw machineVersionUnsupported(def.name, row.machine_version, def.version)
      }
      state = def.migrate(state, row.machine_version)
    }
    return restore(def.machine, state)
  }

  /** Jobs and row timers for a plan; effects are leased to this process so it can run them at once. */
  const jobsFor = (workflowId: string, machine: string, plan: EffectPlan, at: Date) => {
    const local: LocalJob[] = []
    const rows: store.NewJob[] = []
    for (const effect of plan.effects) {
      const id = randomUUID()
      local.push({ id, workflowId, machine, kind: 'effect', name: effect.name, src: effect.src, input: effect.input, attempts: 1 })
      rows.push({
        id, kind: 'effect', name: effect.name, src: effect.src,
        payload: sealer.seal(JSON.stringify(effect.input ?? null)), event: null,
        status: 'running', attempts: 1, run_at: at, lease_owner: owner, lease_ms: leaseMs,
      })
    }
    // Timers ride in the workflow's row (see migrations/engine/002): the runner moves them into
    // jobs once due. The id is the job's-to-be, so moving one twice inserts it once.
    const timers: store.RowTimer[] = plan.timers.map((timer) => ({
      id: randomUUID(), name: timer.name, event: timer.event, run_at: new Date(at.getTime() + timer.delayMs).toISOString(),
    }))
    return { local, rows, timers }
  }

  /** `current` as it stands after a step to `state`, at `version`. */
  const after = (current: Workflow, def: WorkflowDefinition, state: PersistedState, version: number, at: Date): Workflow => ({
    ...current, ...def.project(state), machineVersion: def.version, state: stateName(state.value), statePath: statePath(state.value),
    status: state.status, context: state.context, version, updatedAt: at,
  })

  /** After a commit: effects start first, so a listener that throws can never strand one. */
  const committed = (workflow: Workflow, local: LocalJob[], steps: TransitionStep[], cancelled: string[] = []) => {
    if (local.length || cancelled.length) runLocal(local, cancelled)
    for (const listener of listeners) {
      try {
        listener(workflow, steps)
      } catch (err) {
        log.error({ workflowId: workflow.id, err: toSafeError(err) }, 'transition listener threw; ignored')
      }
    }
  }

  /**
   * Starts a workflow and applies `events` to it, all in one write: the app-url route creates an
   * installation and sends it to the installer in a single round trip.
   */
  async function create(machine: string, input: Record<string, unknown> & { id?: string }, o: { source: string; events?: AnyEvent[] }) {
    const def = definition(machine)
    const id = input.id ?? randomUUID()
    const at = now()
    const step = steppers.get(machine)!
    let [snapshot, actions] = step.initial({ ...input, id })
    const history: Omit<store.HistoryEntry, 'at'>[] = [
      { seq: 1, event_type: 'xstate.init', event: { type: 'xstate.init' }, from_state: null, to_state: statePath(snapshot.value), source: o.source },
    ]
    const allActions = [...actions]
    const contexts = [snapshot.context]
    for (const event of o.events ?? []) {
      if (!snapshot.can(event)) throw new Error(`${machine}: ${event.type} is not accepted right after start`)
      const from = statePath(snapshot.value)
      ;[snapshot, actions] = step.next(snapshot, event)
      allActions.push(...actions)
      contexts.push(snapshot.context)
      history.push({ seq: history.length + 1, event_type: event.type, event: redactEvent(event), from_state: from, to_state: statePath(snapshot.value), source: o.source })
    }
    const plan = planEffects(snapshot, allActions)
    const state = persist(snapshot)
    const { local, rows, timers } = jobsFor(id, machine, plan, at)
    const row: store.WorkflowRow = {
      id, machine, machine_version: def.version, ...def.project(state), state: stateName(state.value),
      snapshot: state, version: history.length, created_at: at, updated_at: at,
    }
    await writer.create({ ...row, now: at, history, jobs: rows, timers })
    remember(row)
    const workflow = toWorkflow(row)
    log.info({ workflowId: id, machine, state: workflow.statePath, source: o.source }, 'workflow created')
    committed(workflow, local, history.map((h, i) => ({ event: h.event_type, from: h.from_state, to: h.to_state, data: h.event, context: contexts[i] })))
    return workflow
  }

  /** Applies one event: fenced read, pure transition, one (batched) write; retried when a writer races us. */
  async function send(id: string, event: AnyEvent, o: SendOptions): Promise<SendResult> {
    // This process's last view of the row saves the read on the hot path. It may be stale: the
    // write is fenced by version (and by the job still being live), so a stale view only costs
    // a write that matches nothing, after which we read and decide again. Nothing is rejected on
    // a cached view alone.
    let row: (store.WorkflowRow & { job_held?: boolean | null }) | undefined = recent.get(id)
    let fresh = false
    for (let tries = 0; tries < MAX_WRITE_TRIES; tries++) {
      if (!row) {
        row = await store.readWorkflow(sql, id, o.job?.lease)
        if (!row) throw workflowNotFound(id)
        fresh = true
      }
      if (o.machine !== undefined && row.machine !== o.machine) throw workflowNotFound(id)
      const def = definition(row.machine)
      const current = toWorkflow(row)
      // A result from a run that no longer holds its job (cancelled, taken over) is not news.
      const stale = fresh && o.job && !row.job_held
      const snapshot = load(def, row)
      // A workflow that reached a final state takes no more events, whatever the machine says.
      if (stale || snapshot.status !== 'active' || !snapshot.can(event)) {
        if (!fresh) {
          row = undefined
          continue
        }
        log.warn({ workflowId: id, event: event.type, state: current.statePath, source: o.source, staleJob: stale || undefined }, 'event rejected')
        // A job that cannot run stays dead, visible to admins, even when its workflow has moved on.
        if (o.job && !stale) {
          if (o.job.status === 'dead') await store.killJob(sql, o.job.lease, o.job.attempt.error, now())
          else await store.discardJob(sql, o.job.lease, now())
        }
        return { accepted: false, workflow: current }
      }
      const step = steppers.get(row.machine)!
      let [next, actions] = step.next(snapshot, event)
      const at = now()
      const history: store.Transition['history'] = [{
        seq: row.version + 1, event_type: event.type, event: redactEvent(event), from_state: current.statePath,
        to_state: statePath(next.value), source: o.source,
      }]
      // A follow-up waiting in this process for the state this event leads to rides in the same
      // write (the browser sent on with the exchange's result): one commit, one row version.
      const contexts = [next.context]
      const follow = followUps.get(id)
      const followEvent = follow && !follow.signal?.aborted && next.status === 'active'
        ? followUpFor(follow, after(current, def, persist(next), row.version + 1, at)) : undefined
      let folded: FollowUp | undefined
      if (follow && followEvent && next.can(followEvent)) {
        folded = follow
        const from = statePath(next.value)
        let more: typeof actions
        ;[next, more] = step.next(next, followEvent)
        actions = [...actions, ...more]
        contexts.push(next.context)
        history.push({
          seq: row.version + 2, event_type: followEvent.type, event: redactEvent(followEvent), from_state: from,
          to_state: statePath(next.value), source: follow.source,
        })
      }
      const plan = planEffects(next, actions)
      const state = persist(next)
      const { local, rows, timers } = jobsFor(id, row.machine, plan, at)
      const version = row.version + history.length
      const workflow = after(current, def, state, version, at)
      const written: store.Transition = {
        id, version: row.version, machineVersion: row.machine_version, writtenMachineVersion: def.version,
        state: workflow.state, key: workflow.key, reason: workflow.reason, snapshot: state,
        history, now: at, jobs: rows, timers, activeInvokes: plan.activeInvokes,
        respawned: plan.effects.map((e) => e.name), cancelledTimers: plan.cancelledTimers, job: o.job,
        // A job's result may be awaited by a `waitFor` on another instance (the browser's).
        notify: wakeups.enabled && o.job !== undefined,
      }
      const commit = writer.commit(written)
      // Taken in the same tick as the decision. Its outcome is set before this send goes on (the
      // reaction registered first runs first), so a waiter that stopped meanwhile hears it too.
      const carrier = folded
      if (carrier) carrier.writing = commit.then((r) => void (r.written && (carrier.sent = { accepted: true, workflow })), () => {})
      const { written: ok, cancelled } = await commit
      if (!ok) {
        // Another writer moved the row on (or our view was old); decide again on what it wrote.
        recent.delete(id)
        row = undefined
        if (fresh) await new Promise((r) => setTimeout(r, Math.random() * 5 * (tries + 1)))
        continue
      }
      remember({ ...row, machine_version: def.version, state: workflow.state, key: workflow.key, reason: workflow.reason, snapshot: state, version, updated_at: at })
      for (const h of history) log.info({ workflowId: id, event: h.event_type, from: h.from_state, to: h.to_state, source: h.source }, 'transition')
      committed(workflow, local, history.map((h, i) => ({ event: h.event_type, from: h.from_state, to: h.to_state, data: h.event, context: contexts[i] })), cancelled)
      return { accepted: true, workflow }
    }
    throw writeContention(id)
  }

  async function get(id: string): Promise<Workflow | undefined> {
    const row = await store.readWorkflow(sql, id)
    if (row) remember(row)
    return row && toWorkflow(row)
  }

  /**
   * Resolves once `done(workflow)` holds, or with the latest workflow after `timeoutMs`.
   * Local commits wake it at once, another instance's job results through NOTIFY (when
   * listening); polling covers the rest.
   */
  async function waitFor(
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
      // One read at a time: under a slow database, polls and wake-ups wait their turn instead of
      // piling up reads of the same row. A wake-up during a read asks for one more after it.
      let reading = false
      let again = false
      const check = async () => {
        if (reading) {
          again = true
          return
        }
        reading = true
        try {
          do {
            again = false
            const w = await get(id).catch(() => undefined)
            if (w && w.version >= (latest?.version ?? 0)) latest = w
            if (w && holds(w)) finish(w)
          } while (again && !settled)
        } finally {
          reading = false
        }
      }
      void wakeups.start()
      // `w:<id>:<writer>`. This process's own writes reach `onLocal` once committed: reading the
      // row again on their NOTIFY (which may arrive first) would only repeat what it tells.
      const unwake = wakeups.on((payload) => {
        if (payload.startsWith(`w:${id}:`) && payload !== `w:${id}:${owner}`) void check()
      })
      const end = (settle: () => void) => {
        if (settled) return
        settled = true
        unwake()
        listeners.delete(onLocal)
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
      listeners.add(onLocal)
      const deadline = setTimeout(() => finish(latest), timeoutMs)
      const poll = setInterval(() => {
        if (!reading) void check()
      }, pollMs)
      // Whoever waited is gone (a browser that left the page): stop at once, polls and all.
      if (signal?.aborted) finish(latest)
      signal?.addEventListener('abort', () => finish(latest), { once: true })
    })
  }

  /**
   * Waits (bounded, as `waitFor`) until `done` holds, then sends `next(workflow)` if that names an
   * event. When this process applies the event that makes `done` hold (an effect's result, run
   * here: the usual case), the follow-up goes in that same write: one commit and one row version
   * instead of two, and no instance ever sees the state in between. `signal` ends the wait early,
   * and a wait so ended sends nothing. One follow-up per workflow rides along; another caller's
   * is sent after the wait, as is one whose wait another instance's progress ended.
   */
  async function waitAndSend(
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

  return {
    owner, now, leaseMs, log, sql, leaseSql, sealer, wakeups,
    definition, create, send, get, waitFor, waitAndSend,
    history: (id: string) => store.readHistory(sql, id),
    /** The group-commit writer's queue and its oldest write in flight (metrics). */
    writerStats: () => writer.stats(),
    /** Jobs that ended dead (could not be opened or run), newest first, with their reasons. */
    deadJobs: (limit?: number) => store.deadJobs(sql, limit),
    /** How many jobs ended dead, by kind and reason code (metrics, `/api/stats`). */
    deadJobCounts: () => store.deadJobCounts(sql),
    /** `listener(workflow, steps)` after every committed create/send in this process. */
    onTransition(listener: TransitionListener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    setLocalRunner(fn: (jobs: LocalJob[], cancelled: string[]) => void) {
      runLocal = fn
    },
  }
}

export type EngineCore = ReturnType<typeof createEngineCore>
