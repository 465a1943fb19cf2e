export interface WixTokens {
    accessToken: string;
    refreshToken: string;
}
type Endpoint = 'oauth/access' | 'bi-event';
type Grant = 'authorization_code' | 'refresh_token';
export interface WixCallInfo {
    endpoint: Endpoint;
    grant?: Grant;
    status: number | null;
    durationMs: number;
    outcome: 'ok' | 'retryable' | 'final';
    wixRequestId?: string;
}
export interface WixClientOptions {
    /** e.g. https://www.wixapis.com, or the fake's base URL */
    apiUrl: string;
    appId: string;
    appSecret: string;
    /** Whole call: connect, headers and body. Default 10 s. */
    timeoutMs?: number;
    log?: {
        warn(obj: object, msg: string): void;
    };
    onCall?: (info: WixCallInfo) => void;
}
export type WixErrorCode = 'WIX_REJECTED' | 'WIX_UNAVAILABLE' | 'WIX_RATE_LIMITED' | 'WIX_NETWORK' | 'WIX_TIMEOUT' | 'WIX_BAD_RESPONSE';
/** A failed Wix call. Built only from safe parts, so it can be stored, logged and shown as is. */
export declare class WixApiError extends Error {
    readonly code: WixErrorCode;
    readonly endpoint: Endpoint;
    readonly status?: number;
    readonly wixRequestId?: string;
    readonly retryable: boolean;
    readonly retryAfterMs?: number;
    constructor(f: {
        code: WixErrorCode;
        message: string;
        endpoint: Endpoint;
        retryable: boolean;
        status?: number;
        wixRequestId?: string;
        retryAfterMs?: number;
    });
    toJSON(): {
        code: WixErrorCode;
        message: string;
        endpoint: Endpoint;
        status: number | undefined;
        wixRequestId: string | undefined;
        retryable: boolean;
        retryAfterMs: number | undefined;
    };
}
export declare function createWixClient(opts: WixClientOptions): {
    exchangeCode(code: string, o?: {
        signal?: AbortSignal;
    }): Promise<WixTokens>;
    refreshAccessToken(refreshToken: string, o?: {
        signal?: AbortSignal;
    }): Promise<WixTokens>;
    sendBiEvent(accessToken: string, o?: {
        signal?: AbortSignal;
        eventName?: string;
    }): Promise<void>;
    close: () => Promise<void>;
};
export type WixClient = ReturnType<typeof createWixClient>;
export declare function parseRetryAfter(value: string | undefined, now?: number): number | undefined;
export {};
