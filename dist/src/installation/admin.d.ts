import type { Sql } from 'postgres';
import type { Engine, Workflow } from '../engine/index.ts';
import * as q from './queries.ts';
import { type TokenVault } from './token-vault.ts';
/**
 * A cursor is opaque to callers: the order it belongs to, and where the last page ended in it
 * (that installation's created_at or updated_at, and its id), as base64url JSON `[tag, iso, id]`.
 */
export declare const encodeCursor: (order: q.ListOrder, w: {
    createdAt: Date;
    updatedAt: Date;
    id: string;
}) => string;
/**
 * Where a page starts, for a list in `order`. A cursor of the other order (the created-at filters
 * were added or dropped between pages) would skip or repeat installations: it is rejected like a
 * forged one. Cursors issued before they named their order, `[iso, id]`, are of the updated order.
 */
export declare function decodeCursor(cursor: string, order: q.ListOrder): {
    at: Date;
    id: string;
};
/** What admins and the app's backend do to installations, free of HTTP. */
export declare function createInstallationAdmin(deps: {
    engine: Engine;
    sql: Sql;
    vault: TokenVault;
    now: () => Date;
}): {
    find: (idOrInstanceId: string) => Promise<Workflow>;
    list: (filter: Omit<q.ListFilter, "after" | "limit"> & {
        limit: number;
        cursor?: string;
    }) => Promise<{
        items: Workflow[];
        nextCursor: string | null;
    }>;
    finish: (installation: Workflow) => Promise<Workflow>;
    retry: (installation: Workflow) => Promise<Workflow>;
    cancel: (installation: Workflow) => Promise<Workflow>;
    accessToken: (installation: Workflow) => Promise<import("./token-vault.ts").AccessToken>;
    stats: () => Promise<{
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
};
export type InstallationAdmin = ReturnType<typeof createInstallationAdmin>;
