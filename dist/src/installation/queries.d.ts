import type { Sql } from 'postgres';
import type { WorkflowRow } from '../engine/store.ts';
import type { AttemptRow } from './view.ts';
export declare const UUID: RegExp;
/** An installation by its id or, the newest for it, by its Wix instanceId: one statement. */
export declare function findInstallation(sql: Sql, ref: string): Promise<WorkflowRow | undefined>;
/** An installation's id, by its id or, the newest for it, by its Wix instanceId. */
export declare function findInstallationId(sql: Sql, idOrInstanceId: string): Promise<string | undefined>;
export interface ListFilter {
    state?: string;
    reason?: string;
    instanceId?: string;
    createdFrom?: Date;
    createdTo?: Date;
    updatedFrom?: Date;
    updatedTo?: Date;
    /** Where the previous page ended, in `listOrder(filter)`: its created_at or updated_at, and its id. */
    after?: {
        at: Date;
        id: string;
    };
    limit: number;
}
/**
 * The order a list is paged in. With a created-at filter, newest-created first: the window is a
 * range of workflows_created_idx, read in order, however many rows it holds. Otherwise
 * newest-updated first (workflows_updated_idx, or the state and reason indexes). Ties by id.
 */
export type ListOrder = 'created' | 'updated';
export declare const listOrder: (f: Pick<ListFilter, "createdFrom" | "createdTo">) => ListOrder;
/** One page of installations in `listOrder(f)`, by keyset (no offset: deep pages stay cheap). */
export declare function listInstallations(sql: Sql, f: ListFilter): Promise<import("postgres").RowList<WorkflowRow[]>>;
/** Installations by state, failures by reason, and the job queue's depth and oldest wait. */
export declare function installationStats(sql: Sql, now: Date): Promise<{
    byState: {
        state: string;
        n: number;
    }[] & Iterable<{
        state: string;
        n: number;
    }> & import("postgres").ResultQueryMeta<number, "state" | "n">;
    byReason: {
        reason: string;
        n: number;
    }[] & Iterable<{
        reason: string;
        n: number;
    }> & import("postgres").ResultQueryMeta<number, "reason" | "n">;
    jobs: {
        waiting: number;
        running: number;
        oldest: Date | null;
    };
}>;
/** Every run of every effect of one installation, oldest first. */
export declare function effectAttempts(sql: Sql, workflowId: string): Promise<import("postgres").RowList<AttemptRow[]>>;
