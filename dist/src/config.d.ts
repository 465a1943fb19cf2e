import { type CipherKey } from './crypto/token-cipher.ts';
/** Where the built-in fake Wix is mounted in sandbox mode. */
export declare const SANDBOX_PREFIX = "/_sandbox/wix";
export interface Config {
    /** No Wix credentials: a fake Wix is served by this process and the flow runs against it. */
    sandbox: boolean;
    wix: {
        appId: string;
        appSecret: string;
        wwwUrl: string;
        apiUrl: string;
    };
    publicUrl: string;
    redirectUrl: string;
    postInstallUrl: string;
    closeWindow: boolean;
    autoFinish: boolean;
    databaseUrl: string | undefined;
    dataDir: string;
    adminToken: string;
    cookieSecrets: string[];
    tokenKeys: CipherKey[];
    /** `none` lets the state cookie survive inside Wix's iframe; it needs an https PUBLIC_URL. */
    cookieSameSite: 'lax' | 'none';
    secureCookies: boolean;
    consentTimeoutMs: number;
    /** How long the Redirect URL holds the browser for the code exchange before a waiting page. */
    redirectWaitMs: number;
    /** On SIGTERM, how long running effects may finish before they are aborted and handed over. */
    shutdownGraceMs: number;
    /** How long a claimed job is an instance's before others may take it (its runner presumed dead). */
    jobLeaseMs: number;
    host: string;
    port: number;
    logLevel: string;
    /** Send transitions to the XState inspector: a ws:// URL, or `true` to start its server here. */
    inspect: string | undefined;
}
export declare class ConfigError extends Error {
    name: string;
}
/** Secrets sandbox mode uses when none are configured (see `sandbox/secrets.ts`). */
export interface SandboxSecrets {
    adminToken: string;
    cookieSecret: string;
    tokenEncryptionKey: string;
    appSecret: string;
}
/**
 * Reads the environment. A bad or missing value throws one line naming the variable and what is
 * wrong with it; nothing starts half-configured.
 */
export declare function loadConfig(env: Record<string, string | undefined>, sandboxSecrets?: () => SandboxSecrets): Config;
