import type { Sql } from 'postgres'
import { initialTransition, transition, type AnyEventObject } from 'xstate'
import { installationMachine, type InstallationContext, type InstallationInput } from '../../machines/installation.ts'
import { listWorkflows, persist, readHistory, statePath } from '../engine/index.ts'
import { findInstallation, MACHINE } from '../installation/queries.ts'
import type { WorkflowInspector } from './workflow-inspector.ts'

export interface ReplayStep {
  seq: number
  event: AnyEventObject
  from: string | null
  to: string
  /** When it happened, as history recorded it. */
  at: Date
  /** Where history says this step went; differs from `to` only if the machine changed since. */
  storedTo: string
  snapshot: ReturnType<typeof persist>
}

/**
 * An installation's stored history run again through the pure machine: the snapshot after each
 * event, recomputed, never read from a log. The events are stored redacted; the machine never
 * branches on the redacted values, so the replay ends where the installation is.
 */
export async function replayInstallation(sql: Sql, idOrInstanceId: string) {
  const row = await findInstallation(sql, idOrInstanceId)
  if (!row) return undefined
  const c = row.snapshot.context as unknown as InstallationContext
  const history = await readHistory(sql, row.id)
  // An instance id names its newest installation; say which others it had.
  const siblings = c.instanceId === null ? []
    : (await listWorkflows(sql, { machine: MACHINE, key: c.instanceId }, { order: 'created', limit: 50 }))
      .map((w) => ({ id: w.id, state: w.state, created_at: w.created_at }))
  // The input is the initial context minus what the machine derives; the stored context has it all,
  // except the state the install began with when a detour to Wix replaced it: the first event
  // that carries a state hash (the callback, accepted against it) has that one.
  const firstStateHash = history.map((h) => (h.event as { stateHash?: unknown }).stateHash).find((s) => typeof s === 'string') as string | undefined
  const input: InstallationInput = {
    id: c.id, origin: c.origin, stateHash: firstStateHash ?? c.stateHash, closeWindow: c.closeWindow, autoFinish: c.autoFinish,
    consentTimeoutMs: c.consentTimeoutMs, codeTtlMs: c.codeTtlMs, browserReturnTimeoutMs: c.browserReturnTimeoutMs,
    ...(c.appUrlToken !== undefined && { appUrlToken: c.appUrlToken }),
    // What decides a webhook-started install's first step: waiting for a browser, or a clone's reinstall.
    ...(c.browserWaitMs !== undefined && { browserWaitMs: c.browserWaitMs }),
    ...(c.reinstallClone !== undefined && { reinstallClone: c.reinstallClone }),
  }
  let [snapshot] = initialTransition(installationMachine, input)
  const init = history[0]
  const steps: ReplayStep[] = [{
    seq: init?.seq ?? 1, event: { type: 'xstate.init' }, from: null, to: statePath(snapshot.value),
    at: init?.at ?? new Date(),
    storedTo: init?.to_state ?? statePath(snapshot.value), snapshot: persist(snapshot),
  }]
  for (const h of history.slice(1)) {
    const from = statePath(snapshot.value)
    ;[snapshot] = transition(installationMachine, snapshot, h.event as never)
    const to = statePath(snapshot.value)
    steps.push({ seq: h.seq, event: h.event as AnyEventObject, from, to, at: h.at, storedTo: h.to_state, snapshot: persist(snapshot) })
  }
  return { id: row.id, machine: 'installation', instanceId: c.instanceId, siblings, steps }
}

export type Replay = NonNullable<Awaited<ReturnType<typeof replayInstallation>>>

/** Sends a replay to an inspector: each step with the snapshot recomputed for it, stamped when it happened. */
export function recordReplay(inspector: Pick<WorkflowInspector, 'record' | 'forget'>, replay: Replay) {
  const workflow = { id: replay.id, machine: replay.machine }
  inspector.forget(workflow)
  for (const step of replay.steps) {
    inspector.record({ ...workflow, context: step.snapshot.context, status: step.snapshot.status }, [
      { event: step.event.type, from: step.from, to: step.to, data: step.event, at: step.at, seq: step.seq },
    ])
  }
}
