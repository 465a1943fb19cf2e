import { z } from 'zod'
import type { InstallationContext } from '../../machines/installation.ts'
import type { Workflow } from '../engine/index.ts'
import type { HistoryEntry } from '../engine/store.ts'

export const failureSchema = z.object({ reason: z.string(), detail: z.string() })
export const effectErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  status: z.number().optional(),
  wixRequestId: z.string().optional(),
  attempts: z.number().optional(),
})

export const installationSchema = z.object({
  id: z.uuid(),
  instanceId: z.string().nullable(),
  state: z.string().describe('Top-level state: AppUrlHit, Authorizing, CodeReceived, Tokened, SetupIncomplete, Finished, or a failure state'),
  statePath: z.string().describe('The full state, e.g. SetupIncomplete.finishing'),
  origin: z.enum(['app-url', 'platform', 'webhook']).describe('How it began: the App URL, the app\'s own platform, or the AppInstalled webhook'),
  originInstanceId: z.string().nullable().describe('For a cloned site: the instance it was cloned from'),
  failure: failureSchema.nullable(),
  lastError: effectErrorSchema.nullable(),
  machineVersion: z.number(),
  version: z.number().describe('How many events this installation has accepted'),
  createdAt: z.date(),
  updatedAt: z.date(),
})

export const historyEntrySchema = z.object({
  seq: z.number(),
  event: z.string(),
  data: z.record(z.string(), z.unknown()).describe('The event payload, secrets redacted'),
  from: z.string().nullable(),
  to: z.string(),
  source: z.string().describe('What sent it: a route, timer, effect:<name>, admin'),
  at: z.date(),
})

export const effectAttemptSchema = z.object({
  effect: z.string().describe('The effect: exchangeCode, finishSetup'),
  attempt: z.number(),
  outcome: z.enum(['ok', 'retry', 'failed']),
  startedAt: z.date().nullable().describe('When a failed run started; null for a run that succeeded (not recorded)'),
  finishedAt: z.date(),
  error: effectErrorSchema.extend({ retryable: z.boolean().optional(), endpoint: z.string().optional() }).nullable(),
  wixRequestId: z.string().nullable().describe("Wix's x-wix-request-id of a failed call"),
})

export const installationWithHistorySchema = installationSchema.extend({
  history: z.array(historyEntrySchema),
  effectAttempts: z.array(effectAttemptSchema).describe('Every finished run of every effect, with its outcome: each failed run, and the one that succeeded'),
})

export interface AttemptRow {
  effect: string
  attempt: number
  outcome: 'ok' | 'retry' | 'failed'
  started_at: Date | null
  finished_at: Date
  error: (z.infer<typeof effectErrorSchema> & { retryable?: boolean; endpoint?: string }) | null
}

export const attemptsView = (rows: AttemptRow[]): z.infer<typeof effectAttemptSchema>[] =>
  rows.map((r) => ({
    effect: r.effect,
    attempt: r.attempt,
    outcome: r.outcome,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    error: r.error && {
      code: r.error.code, message: r.error.message, status: r.error.status ?? undefined,
      wixRequestId: r.error.wixRequestId ?? undefined, retryable: r.error.retryable, endpoint: r.error.endpoint,
    },
    wixRequestId: r.error?.wixRequestId ?? null,
  }))

/** An installation as the API shows it: never a secret (the context holds none). */
export function installationView(w: Workflow): z.infer<typeof installationSchema> {
  const c = w.context as unknown as InstallationContext
  return {
    id: w.id,
    instanceId: c.instanceId,
    state: w.state,
    statePath: w.statePath,
    origin: c.origin,
    originInstanceId: c.originInstanceId ?? null,
    failure: c.failure,
    lastError: c.lastError,
    machineVersion: w.machineVersion,
    version: w.version,
    createdAt: w.createdAt,
    updatedAt: w.updatedAt,
  }
}

export function historyView(entries: HistoryEntry[]): z.infer<typeof historyEntrySchema>[] {
  return entries.map((h) => {
    const { type: _type, ...data } = h.event
    return { seq: h.seq, event: h.event_type, data, from: h.from_state, to: h.to_state, source: h.source, at: h.at }
  })
}
