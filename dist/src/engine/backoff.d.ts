import type { RetryPolicy } from './definition.ts';
export declare const defaultRetryPolicy: RetryPolicy;
/**
 * Delay before attempt `attempt + 1`: capped exponential backoff with "equal jitter" (half fixed,
 * half random), so retries from many installations spread out instead of arriving in waves.
 * A server's Retry-After is a floor, never shortened by the jitter.
 */
export declare function backoffDelay(attempt: number, policy: RetryPolicy, retryAfterMs?: number, random?: () => number): number;
