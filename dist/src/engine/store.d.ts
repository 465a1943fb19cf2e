import type { Sql } from 'postgres';
import type { PersistedState } from './definition.ts';
/**
 * The engine's SQL, one function per operation. Every write that follows from an event is one
 * statement (data-modifying CTEs), fenced by the row's version: a concurrent writer makes it
 * match nothing, and the caller re-reads and re-decides.
 */
export interface WorkflowRow {
    id: string;
    machine: string;
    machine_version: number;
    key: string | null;
    state: string;
    reason: string | null;
    snapshot: PersistedState;
    version: number;
    created_at: Date;
    updated_at: Date;
}
export interface HistoryEntry {
    seq: number;
    event_type: string;
    event: Record<string, unknown>;
    from_state: string | null;
    to_state: string;
    source: string;
    at: Date;
}
export interface NewJob {
    id: string;
    kind: 'effect' | 'timer';
    name: string;
    src: string | null;
    payload: string | null;
    event: unknown;
    status: 'pending' | 'running';
    attempts: number;
    run_at: Date;
    lease_owner: string | null;
    lease_until: Date | null;
}
export interface JobRow extends NewJob {
    workflow_id: string;
    machine: string;
}
export interface AttemptRecord {
    attempt: number;
    outcome: 'ok' | 'retry' | 'failed';
    started_at: Date;
    error: unknown;
}
export interface Transition {
    id: string;
    version: number;
    /** The machine version the snapshot was read with: a row migrated meanwhile is read again. */
    machineVersion: number;
    /** The version the new snapshot belongs to (the running machine's, after any migration). */
    writtenMachineVersion: number;
    state: string;
    key: string | null;
    reason: string | null;
    snapshot: PersistedState;
    eventType: string;
    event: Record<string, unknown>;
    from: string | null;
    to: string;
    source: string;
    now: Date;
    jobs: NewJob[];
    activeInvokes: string[];
    respawned: string[];
    cancelledTimers: string[];
    /** The job whose result this event is: marked done with its attempt, in the same statement. */
    job?: {
        id: string;
        attempt: AttemptRecord;
    };
}
export declare function insertWorkflow(sql: Sql, w: Omit<WorkflowRow, 'created_at' | 'updated_at'> & {
    now: Date;
}, history: Omit<HistoryEntry, 'at'>[], jobs: NewJob[]): Promise<void>;
export declare function readWorkflow(sql: Sql, id: string, jobId?: string): Promise<WorkflowRow & {
    job_status: string | null;
}>;
/** Writes an accepted event. False when another writer got there first. */
export declare function commitTransition(sql: Sql, t: Transition): Promise<boolean>;
/** Claims due jobs, and jobs whose lease ran out (their runner died), for `owner`. */
export declare function claimJobs(sql: Sql, owner: string, now: Date, leaseUntil: Date, limit: number): Promise<import("postgres").RowList<JobRow[]>>;
/** Puts a failed run back in the queue for a later attempt, recording this one. */
export declare function retryJob(sql: Sql, id: string, owner: string, runAt: Date, now: Date, attempt: AttemptRecord): Promise<void>;
/** Ends a job whose result the workflow no longer wants (it moved on). */
export declare function discardJob(sql: Sql, id: string, now: Date): Promise<void>;
/** Hands this owner's unfinished jobs back to the queue at once (graceful shutdown). */
export declare function releaseLeases(sql: Sql, owner: string, now: Date): Promise<number>;
export declare function readHistory(sql: Sql, id: string): Promise<import("postgres").RowList<HistoryEntry[]>>;
