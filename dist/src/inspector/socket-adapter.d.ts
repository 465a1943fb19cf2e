import type { StatelyInspectionEvent } from '@statelyai/inspect';
export interface SocketAdapterOptions {
    url: string;
    /** Messages kept while the inspector is unreachable; past this the oldest are dropped. */
    maxBuffered?: number;
    /** Reconnect delays: doubling from `min` up to `max`. */
    retryMs?: {
        min: number;
        max: number;
    };
    /** Once per outage: the first failed connect, or the loss of an open connection. */
    onDown?: (reason: string) => void;
    onUp?: () => void;
}
/**
 * The transport of `createInspector` (the same messages `createWebSocketInspector` sends), with
 * what a long-running service needs and its own adapter lacks: reconnecting after the inspector
 * went away (not only after a failed connect), sending the buffer once rather than again on every
 * reconnect, a stop that stays stopped, and no timer that keeps the process alive.
 */
export declare function createSocketAdapter(o: SocketAdapterOptions): {
    start: () => void;
    send(event: StatelyInspectionEvent): void;
    /** Resolves true once connected, false after `ms` without a connection. */
    whenOpen(ms: number): Promise<boolean>;
    /** Messages dropped so far because the buffer was full. */
    dropped: () => number;
    /** Closes the connection after what was sent has gone out (at most `ms`); never reconnects. */
    stop(ms?: number): Promise<void>;
};
export type SocketAdapter = ReturnType<typeof createSocketAdapter>;
