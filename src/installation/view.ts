import { z } from 'zod'
import type { InstallationContext } from '../../machines/installation.ts'
import type { HistoryEntry, Workflow } from '../engine/index.ts'

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
  instanceId: z.string().nullable().describe('The instance Wix confirmed this installation belongs to (by its tokens or its signed webhook); null until Wix has said so'),
  claimedInstanceId: z.string().nullable().describe('The instance its Redirect URL named: a claim anyone can edit, never trusted'),
  instanceVerified: z.boolean().describe('True once Wix confirmed the instance; false for an installation that only claims one'),
  instanceNote: z.string().nullable().describe('In words, when the installation only claims its instance: "claimed by its Redirect URL, not confirmed by Wix"'),
  state: z.string().describe('Top-level state: AppUrlHit, Authorizing, CodeReceived, Tokened, SetupIncomplete, Finished, or a failure state'),
  statePath: z.string().describe('The full state, e.g. SetupIncomplete.finishing'),
  origin: z.enum(['app-url', 'platform', 'webhook']).describe('How it began: the App URL, the app\'s own platform, or the AppInstalled webhook'),
  originInstanceId: z.string().nullable().describe('For a cloned site: the instance it was cloned from'),
  cloned: z.string().nullable().describe('For a cloned site, in words: "cloned from <instance>"'),
  supersededBy: z.string().nullable().describe('A webhook-started installation: the browser-flow installation of the same instance that carries the install on'),
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
  supersedes: z.array(z.string()).describe('A browser-flow installation: the webhook-started installations of the same instance it took over'),
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

/** How a claim is told apart from a confirmed instance, in the API, the console and the CLI. */
export const CLAIM_NOTE = 'claimed by its Redirect URL, not confirmed by Wix'

/** An installation workflow's context, as its machine keeps it. */
export const contextOf = (w: Workflow) => w.context as unknown as InstallationContext

/** An installation as the API shows it: never a secret (the context holds sealed ones only, never shown). */
export function installationView(w: Workflow): z.infer<typeof installationSchema> {
  const c = contextOf(w)
  const claimed = c.claimedInstanceId ?? null
  return {
    id: w.id,
    instanceId: c.instanceId,
    claimedInstanceId: claimed,
    instanceVerified: c.instanceId !== null,
    instanceNote: c.instanceId === null && claimed ? CLAIM_NOTE : null,
    state: w.state,
    statePath: w.statePath,
    origin: c.origin,
    originInstanceId: c.originInstanceId ?? null,
    cloned: c.originInstanceId ? `cloned from ${c.originInstanceId}` : null,
    supersededBy: c.supersededBy ?? null,
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
