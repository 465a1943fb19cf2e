import { randomUUID } from 'node:crypto'
import type { EffectPlan } from './snapshot.ts'
import type { NewEffect, RowTimer } from './store.ts'

/** Seals effect inputs at rest (they can hold an OAuth code). */
export interface Sealer {
  seal(plaintext: string): string
  open(sealed: string): string
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

/** The process inserting the jobs: effects are leased to `owner` for `leaseMs`, their inputs sealed. */
export interface JobOwner {
  sealer: Sealer
  owner: string
  leaseMs: number
}

/** What a plan writes in the workflow's row: its effects (and, to run after commit, `local`) and timers. */
export interface PlannedJobs {
  local: LocalJob[]
  effects: NewEffect[]
  timers: RowTimer[]
}

/**
 * What a commit ended of a workflow's jobs: the timer jobs it cancelled, and its effects but
 * those still invoked and not started again (`live`), and the one whose result it is. A run of
 * one in this process is aborted.
 */
export interface EndedJobs {
  workflowId: string
  timers: string[]
  live: string[]
  resultOf?: string
}

/** Row effects and timers for a plan; effects are leased to this process so it can run them at once. */
export function jobsFor(by: JobOwner, workflowId: string, machine: string, plan: EffectPlan, at: Date): PlannedJobs {
  const local: LocalJob[] = []
  const effects: NewEffect[] = []
  for (const effect of plan.effects) {
    const id = randomUUID()
    local.push({ id, workflowId, machine, kind: 'effect', name: effect.name, src: effect.src, input: effect.input, attempts: 1 })
    effects.push({
      id, name: effect.name, src: effect.src, payload: by.sealer.seal(JSON.stringify(effect.input ?? null)),
      status: 'running', attempts: 1, run_at: at.toISOString(), owner: by.owner, lease_ms: by.leaseMs,
    })
  }
  // Timers ride in the workflow's row (see migrations/engine/002): the runner moves them into
  // jobs once due. The id is the job's-to-be, so moving one twice inserts it once.
  const timers: RowTimer[] = plan.timers.map((timer) => ({
    id: randomUUID(), name: timer.name, event: timer.event, run_at: new Date(at.getTime() + timer.delayMs).toISOString(),
  }))
  return { local, effects, timers }
}
