import type { AnyMachineSnapshot, AnyStateMachine, EventObject, StateValue } from 'xstate';
import type { PersistedState } from './definition.ts';
export declare const persist: (snapshot: AnyMachineSnapshot) => PersistedState;
/** Children are not restored: the engine runs effects itself, from the jobs table. */
export declare const restore: (machine: AnyStateMachine, state: PersistedState) => AnyMachineSnapshot;
/** The top-level state: `{ SetupIncomplete: 'waiting' }` → `SetupIncomplete`. */
export declare const stateName: (value: StateValue) => string;
/** The full path: `{ SetupIncomplete: 'waiting' }` → `SetupIncomplete.waiting`. */
export declare const statePath: (value: StateValue) => string;
export interface SpawnedEffect {
    name: string;
    src: string;
    input: unknown;
}
export interface ScheduledTimer {
    name: string;
    event: EventObject;
    delayMs: number;
}
/** What a transition asked the world to do, read off XState's unexecuted actions. */
export interface EffectPlan {
    effects: SpawnedEffect[];
    timers: ScheduledTimer[];
    cancelledTimers: string[];
    /** Invoke ids still active after the transition: effect jobs not among them are cancelled. */
    activeInvokes: string[];
}
interface ExecutableAction {
    type: string;
    params?: unknown;
}
export declare function planEffects(next: AnyMachineSnapshot, actions: ExecutableAction[]): EffectPlan;
/** A machine's definition as plain JSON (implementations dropped), for visualisers. */
export declare const definitionJson: (machine: AnyStateMachine) => Record<string, unknown>;
export {};
