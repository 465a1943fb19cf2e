import { z } from 'zod';
export const failureSchema = z.object({ reason: z.string(), detail: z.string() });
export const effectErrorSchema = z.object({
    code: z.string(),
    message: z.string(),
    status: z.number().optional(),
    wixRequestId: z.string().optional(),
    attempts: z.number().optional(),
});
export const installationSchema = z.object({
    id: z.uuid(),
    instanceId: z.string().nullable(),
    state: z.string().describe('Top-level state: AppUrlHit, Authorizing, CodeReceived, Tokened, SetupIncomplete, Finished, or a failure state'),
    statePath: z.string().describe('The full state, e.g. SetupIncomplete.finishing'),
    origin: z.enum(['app-url', 'platform']),
    failure: failureSchema.nullable(),
    lastError: effectErrorSchema.nullable(),
    machineVersion: z.number(),
    version: z.number().describe('How many events this installation has accepted'),
    createdAt: z.date(),
    updatedAt: z.date(),
});
export const historyEntrySchema = z.object({
    seq: z.number(),
    event: z.string(),
    data: z.record(z.string(), z.unknown()).describe('The event payload, secrets redacted'),
    from: z.string().nullable(),
    to: z.string(),
    source: z.string().describe('What sent it: a route, timer, effect:<name>, admin'),
    at: z.date(),
});
export const effectAttemptSchema = z.object({
    effect: z.string().describe('The effect: exchangeCode, finishSetup'),
    attempt: z.number(),
    outcome: z.enum(['ok', 'retry', 'failed']),
    startedAt: z.date(),
    finishedAt: z.date(),
    error: effectErrorSchema.extend({ retryable: z.boolean().optional(), endpoint: z.string().optional() }).nullable(),
    wixRequestId: z.string().nullable().describe("Wix's x-wix-request-id of a failed call"),
});
export const installationWithHistorySchema = installationSchema.extend({
    history: z.array(historyEntrySchema),
    effectAttempts: z.array(effectAttemptSchema).describe('Every run of every effect, with its outcome'),
});
export const attemptsView = (rows) => rows.map((r) => ({
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
}));
/** An installation as the API shows it: never a secret (the context holds none). */
export function installationView(w) {
    const c = w.context;
    return {
        id: w.id,
        instanceId: c.instanceId,
        state: w.state,
        statePath: w.statePath,
        origin: c.origin,
        failure: c.failure,
        lastError: c.lastError,
        machineVersion: w.machineVersion,
        version: w.version,
        createdAt: w.createdAt,
        updatedAt: w.updatedAt,
    };
}
export function historyView(entries) {
    return entries.map((h) => {
        const { type: _type, ...data } = h.event;
        return { seq: h.seq, event: h.event_type, data, from: h.from_state, to: h.to_state, source: h.source, at: h.at };
    });
}
