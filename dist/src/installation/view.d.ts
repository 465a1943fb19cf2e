import { z } from 'zod';
import type { Workflow } from '../engine/index.ts';
import type { HistoryEntry } from '../engine/store.ts';
export declare const failureSchema: z.ZodObject<{
    reason: z.ZodString;
    detail: z.ZodString;
}, z.core.$strip>;
export declare const effectErrorSchema: z.ZodObject<{
    code: z.ZodString;
    message: z.ZodString;
    status: z.ZodOptional<z.ZodNumber>;
    wixRequestId: z.ZodOptional<z.ZodString>;
    attempts: z.ZodOptional<z.ZodNumber>;
}, z.core.$strip>;
export declare const installationSchema: z.ZodObject<{
    id: z.ZodUUID;
    instanceId: z.ZodNullable<z.ZodString>;
    state: z.ZodString;
    statePath: z.ZodString;
    origin: z.ZodEnum<{
        "app-url": "app-url";
        platform: "platform";
    }>;
    failure: z.ZodNullable<z.ZodObject<{
        reason: z.ZodString;
        detail: z.ZodString;
    }, z.core.$strip>>;
    lastError: z.ZodNullable<z.ZodObject<{
        code: z.ZodString;
        message: z.ZodString;
        status: z.ZodOptional<z.ZodNumber>;
        wixRequestId: z.ZodOptional<z.ZodString>;
        attempts: z.ZodOptional<z.ZodNumber>;
    }, z.core.$strip>>;
    machineVersion: z.ZodNumber;
    version: z.ZodNumber;
    createdAt: z.ZodDate;
    updatedAt: z.ZodDate;
}, z.core.$strip>;
export declare const historyEntrySchema: z.ZodObject<{
    seq: z.ZodNumber;
    event: z.ZodString;
    data: z.ZodRecord<z.ZodString, z.ZodUnknown>;
    from: z.ZodNullable<z.ZodString>;
    to: z.ZodString;
    source: z.ZodString;
    at: z.ZodDate;
}, z.core.$strip>;
export declare const effectAttemptSchema: z.ZodObject<{
    effect: z.ZodString;
    attempt: z.ZodNumber;
    outcome: z.ZodEnum<{
        ok: "ok";
        retry: "retry";
        failed: "failed";
    }>;
    startedAt: z.ZodDate;
    finishedAt: z.ZodDate;
    error: z.ZodNullable<z.ZodObject<{
        code: z.ZodString;
        message: z.ZodString;
        status: z.ZodOptional<z.ZodNumber>;
        wixRequestId: z.ZodOptional<z.ZodString>;
        attempts: z.ZodOptional<z.ZodNumber>;
        retryable: z.ZodOptional<z.ZodBoolean>;
        endpoint: z.ZodOptional<z.ZodString>;
    }, z.core.$strip>>;
    wixRequestId: z.ZodNullable<z.ZodString>;
}, z.core.$strip>;
export declare const installationWithHistorySchema: z.ZodObject<{
    id: z.ZodUUID;
    instanceId: z.ZodNullable<z.ZodString>;
    state: z.ZodString;
    statePath: z.ZodString;
    origin: z.ZodEnum<{
        "app-url": "app-url";
        platform: "platform";
    }>;
    failure: z.ZodNullable<z.ZodObject<{
        reason: z.ZodString;
        detail: z.ZodString;
    }, z.core.$strip>>;
    lastError: z.ZodNullable<z.ZodObject<{
        code: z.ZodString;
        message: z.ZodString;
        status: z.ZodOptional<z.ZodNumber>;
        wixRequestId: z.ZodOptional<z.ZodString>;
        attempts: z.ZodOptional<z.ZodNumber>;
    }, z.core.$strip>>;
    machineVersion: z.ZodNumber;
    version: z.ZodNumber;
    createdAt: z.ZodDate;
    updatedAt: z.ZodDate;
    history: z.ZodArray<z.ZodObject<{
        seq: z.ZodNumber;
        event: z.ZodString;
        data: z.ZodRecord<z.ZodString, z.ZodUnknown>;
        from: z.ZodNullable<z.ZodString>;
        to: z.ZodString;
        source: z.ZodString;
        at: z.ZodDate;
    }, z.core.$strip>>;
    effectAttempts: z.ZodArray<z.ZodObject<{
        effect: z.ZodString;
        attempt: z.ZodNumber;
        outcome: z.ZodEnum<{
            ok: "ok";
            retry: "retry";
            failed: "failed";
        }>;
        startedAt: z.ZodDate;
        finishedAt: z.ZodDate;
        error: z.ZodNullable<z.ZodObject<{
            code: z.ZodString;
            message: z.ZodString;
            status: z.ZodOptional<z.ZodNumber>;
            wixRequestId: z.ZodOptional<z.ZodString>;
            attempts: z.ZodOptional<z.ZodNumber>;
            retryable: z.ZodOptional<z.ZodBoolean>;
            endpoint: z.ZodOptional<z.ZodString>;
        }, z.core.$strip>>;
        wixRequestId: z.ZodNullable<z.ZodString>;
    }, z.core.$strip>>;
}, z.core.$strip>;
export interface AttemptRow {
    effect: string;
    attempt: number;
    outcome: 'ok' | 'retry' | 'failed';
    started_at: Date;
    finished_at: Date;
    error: (z.infer<typeof effectErrorSchema> & {
        retryable?: boolean;
        endpoint?: string;
    }) | null;
}
export declare const attemptsView: (rows: AttemptRow[]) => z.infer<typeof effectAttemptSchema>[];
/** An installation as the API shows it: never a secret (the context holds none). */
export declare function installationView(w: Workflow): z.infer<typeof installationSchema>;
export declare function historyView(entries: HistoryEntry[]): z.infer<typeof historyEntrySchema>[];
