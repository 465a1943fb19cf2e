import type { EngineCore } from './engine.ts';
import { type SafeError } from './errors.ts';
export interface RunnerOptions {
    pollMs?: number;
    /** Claimed jobs run at once by this process, at most. */
    concurrency?: number;
    effectTimeoutMs?: number;
}
/** What a job run ended in, for metrics. */
export interface JobOutcome {
    kind: 'effect' | 'timer';
    name: string;
    machine: string;
    outcome: 'ok' | 'retry' | 'failed' | 'rejected';
    durationMs: number;
    error?: SafeError;
}
/**
 * Runs effects and fires timers. Jobs this process just committed run at once (the fast path);
 * the poll loop claims everything else that is due, including jobs whose runner died and whose
 * lease ran out, with `for update skip locked`, so any number of processes can share the queue.
 */
export declare function createJobRunner(core: EngineCore, opts?: RunnerOptions): {
    tick: () => Promise<number>;
    start(): void;
    /**
     * Lets running jobs finish within `graceMs`, aborts those that do not, then hands this
     * process's leases back so another instance takes them at once, not after the lease.
     */
    stop(graceMs?: number): Promise<void>;
    /** Resolves when nothing is running in this process (tests). */
    idle(): Promise<void>;
    onOutcome(fn: (o: JobOutcome) => void): () => boolean;
};
export type JobRunner = ReturnType<typeof createJobRunner>;
