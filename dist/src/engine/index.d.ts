import { type EngineOptions } from './engine.ts';
import { type RunnerOptions } from './runner.ts';
export type { Workflow, SendResult, Logger, Sealer, AnyEvent } from './engine.ts';
export type { WorkflowDefinition, PersistedState } from './definition.ts';
export { defineWorkflow } from './definition.ts';
export { EngineError } from './errors.ts';
export { toWorkflow } from './engine.ts';
/** The durable engine: `create`/`send`/`get`/`waitFor`, plus `runner` for effects and timers. */
export declare function createEngine(opts: EngineOptions & RunnerOptions): {
    runner: {
        tick: () => Promise<number>;
        start(): void;
        stop(graceMs?: number): Promise<void>;
        idle(): Promise<void>;
        onOutcome(fn: (o: import("./runner.ts").JobOutcome) => void): () => boolean;
    };
    owner: string;
    now: () => Date;
    leaseMs: number;
    log: import("./engine.ts").Logger;
    sql: import("postgres").Sql<{}>;
    sealer: import("./engine.ts").Sealer;
    definition: (name: string) => import("./definition.ts").WorkflowDefinition;
    create: (machine: string, input: Record<string, unknown> & {
        id?: string;
    }, o: {
        source: string;
        events?: import("./engine.ts").AnyEvent[];
    }) => Promise<import("./engine.ts").Workflow>;
    send: (id: string, event: import("./engine.ts").AnyEvent, o: import("./engine.ts").SendOptions) => Promise<import("./engine.ts").SendResult>;
    get: (id: string) => Promise<import("./engine.ts").Workflow | undefined>;
    waitFor: (id: string, done: (w: import("./engine.ts").Workflow) => boolean, timeoutMs: number, pollMs?: number) => Promise<import("./engine.ts").Workflow | undefined>;
    history: (id: string) => Promise<import("postgres").RowList<import("./store.ts").HistoryEntry[]>>;
    onTransition(listener: import("./engine.ts").TransitionListener): () => boolean;
    setLocalRunner(fn: (jobs: import("./engine.ts").LocalJob[]) => void): void;
};
export type Engine = ReturnType<typeof createEngine>;
