import { type FastifyInstance } from 'fastify';
/**
 * A fake of the Wix side of the legacy OAuth flow (installer pages, /oauth/access, the bi-event),
 * faithful to design.md, with switches to make it fail. Serves sandbox mode and the tests.
 */
export interface FakeWixOptions {
    appId: string;
    appSecret: string;
    now?: () => number;
    codeTtlMs?: number;
    accessTokenTtlMs?: number;
}
export interface FakeWixFailure {
    endpoint: 'oauth/access' | 'bi-event' | 'any';
    grant?: 'authorization_code' | 'refresh_token';
    /** e.g. 500, 503, 429, 400, 401 */
    status?: number;
    retryAfterSeconds?: number;
    /** Answer late; then fail with `status`, or answer normally without one. */
    delayMs?: number;
    /** Never answer, until the server closes (or 60 s pass). */
    hang?: boolean;
    /** Default 1. */
    times?: number;
    /** The error's `message`, to play a Wix that echoes what it was sent. */
    message?: string;
}
export interface RecordedRequest {
    endpoint: string;
    method: string;
    headers: Record<string, string | string[] | undefined>;
    body: unknown;
    /** 0 while the request is still held by a delay or hang. */
    status: number;
    at: number;
}
export interface IssuedCode {
    instanceId: string;
    expiresAt: number;
    used: boolean;
}
export interface FakeWix {
    readonly appId: string;
    readonly appSecret: string;
    requests: RecordedRequest[];
    issuedCodes: Map<string, IssuedCode>;
    failNext(f: FakeWixFailure): void;
    /** Forgets recorded requests and queued failures and releases held requests; issued tokens stay valid. */
    reset(): void;
    /** Mints a code as the consent page's Approve would. */
    issueCode(instanceId?: string): {
        code: string;
        instanceId: string;
    };
    /** How many token exchanges were attempted with this code, successful or not. */
    countExchanges(code: string): number;
    /** Signed by the fake's appSecret and unexpired: also true for tokens minted before a restart. */
    isValidAccessToken(token: string): boolean;
    /** The instance a refresh token was signed for; undefined when forged, malformed or revoked. */
    verifyRefreshToken(token: string): string | undefined;
    /** Later refreshes with this token get a 400, as after an uninstall (until this process ends). */
    revokeRefreshToken(token: string): void;
    /** The instanceId a Wix install token maps to, minted on first use. */
    instanceIdFor(installToken: string | undefined, forced?: string): string;
    /** The next queued failure for this call, consumed; undefined when there is none. */
    takeFailure(endpoint: 'oauth/access' | 'bi-event', grant?: string): FakeWixFailure | undefined;
    /** Failures queued and not yet played, with how many times each is left. */
    pendingFailures(): ReadonlyArray<FakeWixFailure & {
        left: number;
    }>;
    /** Waits `ms` (Infinity = until released); every wait ends on `releaseAll()`. */
    hold(ms: number): Promise<'elapsed' | 'released'>;
    releaseAll(): void;
    mintTokens(instanceId: string, refreshToken?: string): {
        access_token: string;
        refresh_token: string;
    };
    /** Refresh tokens this process issued or accepted; the tokens themselves need no memory. */
    refreshTokens: Map<string, {
        instanceId: string;
        revoked: boolean;
    }>;
    now(): number;
}
export declare function createFakeWix(opts: FakeWixOptions): FakeWix;
/** The panel's one-click failures; each plays the failure path its label names. */
export declare const SANDBOX_SWITCHES: Record<string, {
    label: string;
    failure: FakeWixFailure;
}>;
export declare function fakeWixPlugin(fastify: FastifyInstance, opts: FakeWixOptions & {
    wix?: FakeWix;
}): Promise<void>;
/** The fake alone on a real port, for tests and for pointing a separately run service at it. */
export declare function startFakeWix(opts?: Partial<FakeWixOptions> & {
    port?: number;
}): Promise<{
    url: string;
    wix: FakeWix;
    close: () => Promise<undefined>;
}>;
