import type { Sql } from 'postgres';
import { type EventObject } from 'xstate';
import type { PersistedState, WorkflowDefinition } from './definition.ts';
import * as store from './store.ts';
export interface Logger {
    debug(obj: object, msg?: string): void;
    info(obj: object, msg?: string): void;
    warn(obj: object, msg?: string): void;
    error(obj: object, msg?: string): void;
}
/** Seals effect inputs at rest (they can hold an OAuth code). */
export interface Sealer {
    seal(plaintext: string): string;
    open(sealed: string): string;
}
export interface EngineOptions {
    sql: Sql;
    definitions: WorkflowDefinition[];
    sealer: Sealer;
    log: Logger;
    /** Identifies this process in job leases. */
    owner?: string;
    /** The engine's only clock: tests move it instead of waiting. */
    now?: () => Date;
    leaseMs?: number;
}
/** A workflow as callers see it: the persisted state and its bookkeeping, no secrets. */
export interface Workflow {
    id: string;
    machine: string;
    machineVersion: number;
    key: string | null;
    state: string;
    statePath: string;
    reason: string | null;
    status: PersistedState['status'];
    context: Record<string, unknown>;
    version: number;
    createdAt: Date;
    updatedAt: Date;
}
/** One accepted step, as its history row records it (`from` is null for the start). */
export interface TransitionStep {
    event: string;
    from: string | null;
    to: string;
    /** The event as history stores it: secret fields redacted. */
    data: Record<string, unknown>;
}
export type TransitionListener = (workflow: Workflow, steps: TransitionStep[]) => void;
export type SendResult = {
    accepted: true;
    workflow: Workflow;
} | {
    accepted: false;
    workflow: Workflow;
};
/** A job this process inserted already leased to itself: run it right after commit. */
export interface LocalJob {
    id: string;
    workflowId: string;
    machine: string;
    kind: 'effect';
    name: string;
    src: string;
    input: unknown;
    attempts: number;
}
/** Any event: its payload is the machine's business; secret fields are redacted in history. */
export type AnyEvent = EventObject & Record<string, unknown>;
export interface SendOptions {
    /** Who sent it: a route, `timer`, `effect:<name>`, `admin`. Stored in history. */
    source: string;
    job?: {
        id: string;
        attempt: store.AttemptRecord;
    };
    /** Only a workflow of this machine takes the event; any other reads as not found. */
    machine?: string;
}
/** A stored row as callers see it. */
export declare const toWorkflow: (row: store.WorkflowRow) => Workflow;
export declare function createEngineCore(opts: EngineOptions): {
    owner: string;
    now: () => Date;
    leaseMs: number;
    log: Logger;
    sql: Sql<{}>;
    sealer: Sealer;
    definition: (name: string) => WorkflowDefinition;
    create: (machine: string, input: Record<string, unknown> & {
        id?: string;
    }, o: {
        source: string;
        events?: AnyEvent[];
    }) => Promise<Workflow>;
    send: (id: string, event: AnyEvent, o: SendOptions) => Promise<SendResult>;
    get: (id: string) => Promise<Workflow | undefined>;
    waitFor: (id: string, done: (w: Workflow) => boolean, timeoutMs: number, pollMs?: number) => Promise<Workflow | undefined>;
    history: (id: string) => Promise<import("postgres").RowList<store.HistoryEntry[]>>;
    /** `listener(workflow, steps)` after every committed create/send in this process. */
    onTransition(listener: TransitionListener): () => boolean;
    setLocalRunner(fn: (jobs: LocalJob[]) => void): void;
};
export type EngineCore = ReturnType<typeof createEngineCore>;
