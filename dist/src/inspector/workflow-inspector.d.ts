import type { AnyStateMachine, StateValue } from 'xstate';
import type { Workflow } from '../engine/index.ts';
import type { TransitionStep } from '../engine/engine.ts';
import { type SocketAdapterOptions } from './socket-adapter.ts';
export declare function stripSecrets<T>(value: T, depth?: number): T;
/** `SetupIncomplete.finishing` → `{ SetupIncomplete: 'finishing' }`, as the inspector draws it. */
export declare function valueOf(path: string): StateValue;
/** One inspector actor per workflow, named after it, the same in every process and in replays. */
export declare const actorId: (w: {
    machine: string;
    id: string;
}) => string;
export interface WorkflowInspectorOptions extends Omit<SocketAdapterOptions, 'url'> {
    /** The machine a workflow runs: its config goes with the actor, so the inspector draws it. */
    machine?: (name: string) => AnyStateMachine | undefined;
}
export type InspectedWorkflow = Pick<Workflow, 'id' | 'machine' | 'context' | 'status'>;
/**
 * Sends engine transitions to the Stately inspector over its WebSocket protocol: each workflow is
 * announced once (`@xstate.actor`, with its machine), then every step is an `@xstate.event` and
 * the `@xstate.snapshot` after it. Events go as history stores them; secrets are stripped again.
 */
export declare function createWorkflowInspector(url: string, o?: WorkflowInspectorOptions): {
    url: string;
    /** Sends the steps of one committed transition, announcing the workflow the first time. */
    record(workflow: InspectedWorkflow, steps: TransitionStep[]): void;
    whenOpen: (ms: number) => Promise<boolean>;
    dropped: () => number;
    stop: (ms?: number) => Promise<void>;
};
export type WorkflowInspector = ReturnType<typeof createWorkflowInspector>;
