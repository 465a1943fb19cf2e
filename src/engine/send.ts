import type { Sql } from 'postgres'
import type { WorkflowDefinition } from './definition.ts'
import { decide, type Rejected, type Stepper } from './decide.ts'
import { EngineError, workflowNotFound, writeContention } from './errors.ts'
import type { EndedJobs, LocalJob, PlannedJobs } from './jobs.ts'
import type { EffectPlan } from './snapshot.ts'
import type { RecentRows } from './recent.ts'
import * as store from './store.ts'
import { discardJob, killJob } from './job-store.ts'
import { retry } from './retry.ts'
import type { Logger, RetryPolicy } from './types.ts'
import type { FollowUp } from './wait.ts'
import type { Writer } from './writer.ts'
import { stepsOf, type AnyEvent, type SendResult, type TransitionStep, type Workflow } from './workflow.ts'

export interface SendOptions {
  /** Who sent it: a route, `timer`, `effect:<name>`, `admin`. Stored in history. */
  source: string
  /** The job run whose result this is: accepted only while that run still holds the job. */
  job?: NonNullable<store.Transition['job']>
  /** Only a workflow of this machine takes the event; any other reads as not found. */
  machine?: string
}

/**
 * Races lost on a row's version: decided again at once on what the winner wrote, a few jittered
 * milliseconds apart so racing instances fall out of step; `WRITE_CONTENTION` after 25.
 */
const WRITE_RACE: RetryPolicy = { maxAttempts: 25, baseDelayMs: 5, maxDelayMs: 50 }
const lostRace = (err: unknown) => err instanceof EngineError && err.code === 'WRITE_CONTENTION'

export interface SendDeps {
  sql: Sql
  log: Logger
  now: () => Date
  writer: Writer
  recent: RecentRows
  /** Follow-ups waiting in this process, by workflow (see `waitAndSend`). */
  followUps: Map<string, FollowUp>
  definition: (machine: string) => WorkflowDefinition
  step: (machine: string) => Stepper
  jobsFor: (workflowId: string, machine: string, plan: EffectPlan, at: Date) => PlannedJobs
  afterCommit: (workflow: Workflow, local: LocalJob[], steps: TransitionStep[], ended?: EndedJobs) => void
  /** Whether commits NOTIFY other instances (`wakeups.enabled`). */
  notify: boolean
}

/** The engine's `send`. */
export function makeSend(deps: SendDeps) {
  const { sql, log, now, writer, recent, followUps, definition, step, jobsFor, afterCommit, notify } = deps

  /** An event the row, read just now, does not take: logged, and a job's run that sent it settled. */
  async function rejected(id: string, event: AnyEvent, d: Rejected, o: SendOptions): Promise<SendResult> {
    log.warn({ workflowId: id, event: event.type, state: d.workflow.statePath, source: o.source, staleJob: d.stale || undefined }, 'event rejected')
    // A job that cannot run stays dead, visible to admins, even when its workflow has moved on.
    if (o.job && !d.stale) {
      if (o.job.status === 'dead') await killJob(sql, o.job.lease, o.job.attempt.error, now())
      else await discardJob(sql, o.job.lease, now())
    }
    return { accepted: false, workflow: d.workflow }
  }

  /** The row as read now, with whether `o.job`'s run still holds its job. */
  async function readFresh(id: string, o: SendOptions) {
    const row = await store.readWorkflow(sql, id, o.job?.lease)
    if (!row) throw workflowNotFound(id)
    return row
  }

  /**
   * One try: decide on the row, write, and throw `WRITE_CONTENTION` if another writer moved the
   * row on first (the caller tries again on what it wrote). This process's last view of the row
   * saves the read on the hot path. It may be stale: the write is fenced by version (and by the
   * job still being live), so a stale view only costs a write that matches nothing. Nothing is
   * rejected on a cached view alone: a cached view that refuses the event is read again first.
   */
  async function sendOnce(id: string, event: AnyEvent, o: SendOptions): Promise<SendResult> {
    const cached = recent.get(id)
    let row: store.WorkflowRow & { job_held?: boolean | null } = cached ?? await readFresh(id, o)
    // Of another machine, it reads as not found (a workflow's machine never changes: one check).
    if (o.machine !== undefined && row.machine !== o.machine) throw workflowNotFound(id)
    const at = now()
    const decideOn = (r: typeof row, fresh: boolean) => decide({
      row: r, fresh, def: definition(r.machine), step: step(r.machine), event, source: o.source, fromJob: o.job !== undefined,
      follow: followUps.get(id), at,
    })
    let d = decideOn(row, !cached)
    if (!d.accepted && cached) d = decideOn((row = await readFresh(id, o)), true)
    if (!d.accepted) return rejected(id, event, d, o)
    const def = definition(row.machine)
    const { workflow, state, history, plan } = d
    const { local, effects, timers } = jobsFor(id, row.machine, plan, at)
    const respawned = plan.effects.map((e) => e.name)
    const written: store.Transition = {
      id, version: row.version, machineVersion: row.machine_version, writtenMachineVersion: def.version,
      state: workflow.state, key: workflow.key, reason: workflow.reason, snapshot: state,
      history, now: at, effects, timers, activeInvokes: plan.activeInvokes, respawned, cancelledTimers: plan.cancelledTimers, job: o.job,
      // A job's result may be awaited by a `waitFor` on another instance (the browser's).
      notify: notify && o.job !== undefined,
    }
    const commit = writer.commit(written)
    // Taken in the same tick as the decision. Its outcome is set before this send goes on (the
    // reaction registered first runs first), so a waiter that stopped meanwhile hears it too.
    const carrier = d.folded
    if (carrier) carrier.writing = commit.then((r) => void (r.written && (carrier.sent = { accepted: true, workflow })), () => {})
    const { written: ok, cancelled } = await commit
    if (!ok) {
      // Another writer moved the row on (or our view was old): the next try decides on what it wrote.
      recent.forget(id)
      throw writeContention(id)
    }
    recent.remember({ ...row, machine_version: def.version, state: workflow.state, key: workflow.key, reason: workflow.reason, snapshot: state, version: workflow.version, updated_at: at })
    for (const h of history) log.info({ workflowId: id, event: h.event_type, from: h.from_state, to: h.to_state, source: h.source }, 'transition')
    afterCommit(workflow, local, stepsOf(history, d.contexts), {
      workflowId: id, timers: cancelled, live: plan.activeInvokes.filter((name) => !respawned.includes(name)), resultOf: o.job?.lease.id,
    })
    return { accepted: true, workflow }
  }

  /** Applies one event: fenced read, pure decision, one (batched) write; tried again when a writer races us. */
  return (id: string, event: AnyEvent, o: SendOptions): Promise<SendResult> =>
    retry(() => sendOnce(id, event, o), { policy: WRITE_RACE, retryIf: lostRace })
}
