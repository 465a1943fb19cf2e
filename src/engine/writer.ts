import type { Sql } from 'postgres'
import { isDatabaseUnavailable, PG } from './pg.ts'
import type { Logger, RetryPolicy } from './types.ts'
import { writeQueueFull } from './errors.ts'
import { commitBatch, type Batch, type NewWorkflow, type Transition } from './store.ts'
import { retry } from './retry.ts'

/**
 * Group commit: the engine's writes (creates and accepted events) go to the database in
 * batches, one statement and one commit per batch, so workflows moving at the same time share
 * a commit (its fsync) and a round trip instead of paying one each.
 *
 * Nothing waits to fill a batch: an idle writer sends the first write at once (in the same
 * tick). Writes that arrive while `maxInFlight` batches are in flight queue up and go together
 * as the next batch. A workflow has at most one write in flight: a second write of the same
 * workflow waits for the batch holding the first, so it is fenced against what that one wrote.
 * Every caller is answered after the commit that holds its write, with its own outcome.
 *
 * A statement the database never answers (a connection that hangs instead of failing) would
 * stall every write behind it while heartbeats keep the jobs' leases alive. So a batch held past
 * `stallMs` lets the next one past it (see `flying`), and every write has a deadline from the
 * moment it is queued (`writeTimeoutMs`): a batch still unanswered at its oldest write's
 * deadline is cancelled and its writes fail as the database being unavailable (the batches in
 * flight hold older writes, so a slot frees before a queued write's deadline). A cancelled write may still
 * have committed; every write is fenced by its version, so a caller that tries again re-reads
 * and decides afresh. The queue is bounded (`maxQueued`): past it a write is refused at once
 * (`WRITE_QUEUE_FULL`, 503) rather than held for a database that is not keeping up.
 */

export interface WriterOptions {
  /**
   * Batches in flight at once (1): more overlap round trips, fewer make bigger batches. Two
   * measured fewer writes per commit and no more flows/s (bench/README.md, "Group commit").
   */
  maxInFlight?: number
  /** Writes per statement at most: bounds its parameters and the rows it locks. */
  maxBatch?: number
  /** How long a write may wait, queued and then in flight, before it fails (15 s). */
  writeTimeoutMs?: number
  /** Writes queued at most (10,000); past it a write is refused at once with `WRITE_QUEUE_FULL`. */
  maxQueued?: number
  log?: Pick<Logger, 'error' | 'warn'>
  /** Who writes (the engine's owner): NOTIFY payloads name it, so a process can skip its own. */
  origin?: string
  /**
   * How long a batch may wait (2 s) before the next batch goes past it on another connection;
   * one of several is then cancelled and its writes go again alone: one row locked elsewhere (a
   * vault's FOR SHARE fence, an admin's open transaction) then holds its own write only, and
   * the others commit.
   */
  stallMs?: number
}

/** `queuedAt`: this process's monotonic clock (`performance.now()`) when the write was queued. */
type Write = { queuedAt: number } & (
  | { kind: 'create'; w: NewWorkflow; resolve: (v: void) => void; reject: (err: unknown) => void }
  | { kind: 'transition'; t: Transition; resolve: (v: TransitionResult) => void; reject: (err: unknown) => void }
)

/** What the writer holds right now: for a gauge, and for whoever wonders why writes are slow. */
export interface WriterStats {
  queued: number
  inFlight: number
  /** How long the oldest write in flight has waited since it was queued (0 if none). */
  oldestInFlightMs: number
}

export interface TransitionResult {
  /** False when the fence matched nothing: another writer moved the row on, or the run lost its job. */
  written: boolean
  /** The jobs the transition cancelled (a run of one in this process is to be aborted). */
  cancelled: string[]
}

/** deadlock_detected: Postgres rolled the whole statement back, so it can simply be sent again. */
const DEADLOCK = '40P01'
/** Sent at once, three times in all: the other transaction has gone by then. */
const DEADLOCK_RESEND: RetryPolicy = { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 }
/** Single writes sent at once when a refused batch goes again write by write. */
const FAN_OUT = 4
/** Batches held past `stallMs` let others past them at most (each holds a connection). */
const MAX_STALLED = 2

interface Flight {
  /** When its oldest write was queued (`performance.now()`). */
  oldest: number
  /** Held past `stallMs`: no longer counted against `maxInFlight`. */
  stalled: boolean
}

const workflowOf = (write: Write) => (write.kind === 'create' ? write.w.id : write.t.id)

/** The error a create gets when its id is taken, as the single insert raised it. */
const taken = (id: string) =>
  Object.assign(new Error(`workflow ${id} already exists`), { code: PG.UNIQUE_VIOLATION })

const writeTimeout = (ms: number) =>
  Object.assign(new Error(`the database did not answer a write within ${ms} ms`), { code: 'WRITE_TIMEOUT' })

/** What `withDeadline`, `send` and `take` need of the writer's options, resolved. */
interface Deadlines {
  stallMs: number
  writeTimeoutMs: number
  origin?: string
  log?: Pick<Logger, 'error' | 'warn'>
}

/** One batch as one statement, sent again if Postgres ends it as a deadlock. */
async function statement(sql: Sql, batch: Write[], signal: AbortSignal, origin: string | undefined) {
  const b: Batch = { creates: [], transitions: [] }
  batch.forEach((write, i) => {
    if (write.kind === 'create') b.creates.push({ i, w: write.w })
    else b.transitions.push({ i, t: write.t })
  })
  return retry(() => commitBatch(sql, b, { signal, origin }), {
    policy: DEADLOCK_RESEND, retryIf: (err) => (err as { code?: unknown }).code === DEADLOCK, signal,
  })
}

/**
 * The batch's statement, given up on (and cancelled) at its oldest write's deadline
 * (`writeTimeoutMs` after it was queued). Still waiting after `stallMs`, it tells `onStall` (the
 * next batch may go past it); one of several is then cancelled, and its own outcome awaited: committed just before the cancel, it stands; cancelled, it rejects (57014)
 * and `send` sends its writes again one by one.
 */
async function withDeadline(sql: Sql, batch: Write[], o: Deadlines, onStall: () => void) {
  const { stallMs, writeTimeoutMs } = o
  const abort = new AbortController()
  const written = statement(sql, batch, abort.signal, o.origin)
  written.catch(() => {}) // settling after the deadline, it has no one left to tell
  let stallTimer: ReturnType<typeof setTimeout> | undefined
  let deadTimer: ReturnType<typeof setTimeout> | undefined
  const stalled = new Promise<'stalled'>((resolve) => {
    stallTimer = setTimeout(() => resolve('stalled'), stallMs)
  })
  const left = Math.max(0, Math.min(...batch.map((w) => w.queuedAt)) + writeTimeoutMs - performance.now())
  const deadline = new Promise<never>((_, reject) => {
    deadTimer = setTimeout(() => {
      o.log?.error({ writes: batch.length, waitedMs: writeTimeoutMs },
        'a batched write went unanswered: it is cancelled and its writes fail as the database being unavailable')
      abort.abort()
      reject(writeTimeout(writeTimeoutMs))
    }, left)
  })
  try {
    const first = await Promise.race([written, stalled, deadline])
    if (first !== 'stalled') return first
    onStall()
    if (batch.length === 1) {
      // Alone, it has nothing to be split from: it waits out its deadline (or lock_timeout), said once.
      o.log?.warn({ writes: 1, waitedMs: stallMs }, 'a write is held (a row locked elsewhere?): it waits for its deadline')
    } else {
      o.log?.error({ writes: batch.length, waitedMs: stallMs },
        'a batched write is held (a row locked elsewhere?): it is cancelled and its writes go again one by one')
      abort.abort()
    }
    return await Promise.race([written, deadline])
  } finally {
    clearTimeout(stallTimer)
    clearTimeout(deadTimer)
  }
}

/** Never throws: every write of the batch is answered, with its own outcome or the batch's error. */
async function send(sql: Sql, batch: Write[], deadlines: Deadlines, onStall = () => {}): Promise<void> {
  let written: Map<number, string[]>
  try {
    written = await withDeadline(sql, batch, deadlines, onStall)
  } catch (err) {
    // A refused write (bad data, a constraint) would fail every write it shares a statement
    // with, and their callers would take it for their own fault: each goes again alone, so
    // only the faulty one fails. The database being away fails all of them alike, as it is.
    if (batch.length > 1 && !isDatabaseUnavailable(err)) {
      // A few at a time: a batch of hundreds must not take every connection of the pool.
      const alone = [...batch]
      await Promise.all(Array.from({ length: Math.min(FAN_OUT, alone.length) }, async () => {
        for (let write = alone.shift(); write; write = alone.shift()) await send(sql, [write], deadlines)
      }))
      return
    }
    for (const write of batch) write.reject(err)
    return
  }
  batch.forEach((write, i) => {
    const cancelled = written.get(i)
    if (write.kind === 'transition') write.resolve({ written: cancelled !== undefined, cancelled: cancelled ?? [] })
    else if (cancelled !== undefined) write.resolve()
    else write.reject(taken(write.w.id))
  })
}

/**
 * The queue's oldest writes of distinct, idle workflows (marked busy), and the rest, which keep
 * their place; writes past their deadline are failed.
 */
function take(queue: Write[], busy: Set<string>, maxBatch: number, o: Deadlines): { batch: Write[]; rest: Write[] } {
  const { writeTimeoutMs } = o
  const batch: Write[] = []
  const rest: Write[] = []
  const expired: Write[] = []
  const now = performance.now()
  for (const write of queue) {
    // Past its deadline while it queued: failed unsent, not sent only to be cancelled at once.
    if (now - write.queuedAt >= writeTimeoutMs) {
      expired.push(write)
      continue
    }
    const id = workflowOf(write)
    if (batch.length < maxBatch && !busy.has(id)) {
      busy.add(id)
      batch.push(write)
    } else rest.push(write)
  }
  if (expired.length) {
    o.log?.error({ writes: expired.length, waitedMs: writeTimeoutMs },
      'writes waited their whole deadline behind batches the database did not answer: they fail unsent, as the database being unavailable')
    for (const write of expired) write.reject(writeTimeout(writeTimeoutMs))
  }
  return { batch, rest }
}

export function createWriter(sql: Sql, o: WriterOptions = {}) {
  const maxInFlight = o.maxInFlight ?? 1
  const maxBatch = o.maxBatch ?? 200
  const writeTimeoutMs = o.writeTimeoutMs ?? 15_000
  const stallMs = o.stallMs ?? 2_000
  const maxQueued = o.maxQueued ?? 10_000
  const deadlines: Deadlines = { stallMs, writeTimeoutMs, origin: o.origin, log: o.log }
  let queue: Write[] = []
  /** Workflows with a write in flight. */
  const busy = new Set<string>()
  /**
   * The batches in flight, by the queue time of their oldest write. One held past `stallMs` no
   * longer counts against `maxInFlight`, so the writes behind it go on another connection: one
   * hung statement holds its own writes only. At most `MAX_STALLED` are let past that way, so a
   * database that answers nothing does not take every connection of the pool.
   */
  const flying = new Set<Flight>()
  const active = () => [...flying].filter((f) => !f.stalled).length
  let scheduled = false

  function pump() {
    while (active() < maxInFlight && flying.size < maxInFlight + MAX_STALLED && queue.length) {
      const { batch, rest } = take(queue, busy, maxBatch, deadlines)
      // Not splice(…, ...rest): spread as arguments, a queue grown long (an outage under load) would overflow the stack.
      queue = rest
      if (!batch.length) break
      const flight: Flight = { oldest: Math.min(...batch.map((w) => w.queuedAt)), stalled: false }
      flying.add(flight)
      const onStall = () => {
        flight.stalled = true
        pump()
      }
      void send(sql, batch, deadlines, onStall).finally(() => {
        flying.delete(flight)
        for (const write of batch) busy.delete(workflowOf(write))
        pump()
      })
    }
  }

  /** Writes enqueued in the same tick share a batch; an idle writer adds no delay beyond that. */
  function schedule() {
    if (scheduled) return
    scheduled = true
    queueMicrotask(() => {
      scheduled = false
      pump()
    })
  }

  function enqueue(write: Write) {
    if (queue.length >= maxQueued) return write.reject(writeQueueFull(maxQueued))
    queue.push(write)
    schedule()
  }

  return {
    /** Starts a workflow; rejects with a unique violation when its id is taken. */
    create(w: NewWorkflow): Promise<void> {
      return new Promise((resolve, reject) => enqueue({ kind: 'create', w, resolve, reject, queuedAt: performance.now() }))
    },
    /** Writes an accepted event, fenced by the version (and job lease) it was decided on. */
    commit(t: Transition): Promise<TransitionResult> {
      return new Promise((resolve, reject) => enqueue({ kind: 'transition', t, resolve, reject, queuedAt: performance.now() }))
    },
    stats(): WriterStats {
      const now = performance.now()
      const oldest = Math.min(...[...flying].map((f) => f.oldest))
      return { queued: queue.length, inFlight: flying.size, oldestInFlightMs: flying.size ? Math.round(now - oldest) : 0 }
    },
  }
}

export type Writer = ReturnType<typeof createWriter>
