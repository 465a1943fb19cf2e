import type { Sql } from 'postgres';
import { type AnyEventObject } from 'xstate';
import { persist } from '../engine/snapshot.ts';
export interface ReplayStep {
    seq: number;
    event: AnyEventObject;
    from: string | null;
    to: string;
    /** Where history says this step went; differs from `to` only if the machine changed since. */
    storedTo: string;
    snapshot: ReturnType<typeof persist>;
}
/**
 * An installation's stored history run again through the pure machine: the snapshot after each
 * event, recomputed, never read from a log. The events are stored redacted; the machine never
 * branches on the redacted values, so the replay ends where the installation is.
 */
export declare function replayInstallation(sql: Sql, idOrInstanceId: string): Promise<{
    id: string;
    machine: string;
    steps: ReplayStep[];
} | undefined>;
