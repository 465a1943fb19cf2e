import type { EventObject } from 'xstate';
export declare const REDACTED = "[redacted]";
export declare function redactEvent(event: EventObject): Record<string, unknown>;
