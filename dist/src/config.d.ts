import { z } from 'zod';
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
    readonly variable?: string | undefined;
    readonly problem?: string | undefined;
    name: string;
    /** The variable at fault and what is wrong with it, so the plugin can name its option instead. */
    constructor(message: string, variable?: string | undefined, problem?: string | undefined);
}
declare const schema: z.ZodObject<{
    WIX_APP_ID: z.ZodPreprocess<z.ZodOptional<z.ZodString>, unknown>;
    WIX_APP_SECRET: z.ZodPreprocess<z.ZodOptional<z.ZodString>, unknown>;
    PUBLIC_URL: z.ZodPreprocess<z.ZodDefault<z.ZodPipe<z.ZodURL, z.ZodTransform<string, string>>>, unknown>;
    WIX_WWW_URL: z.ZodPreprocess<z.ZodDefault<z.ZodPipe<z.ZodURL, z.ZodTransform<string, string>>>, unknown>;
    WIX_API_URL: z.ZodPreprocess<z.ZodDefault<z.ZodPipe<z.ZodURL, z.ZodTransform<string, string>>>, unknown>;
    DATABASE_URL: z.ZodPreprocess<z.ZodOptional<z.ZodString>, unknown>;
    DATA_DIR: z.ZodPreprocess<z.ZodDefault<z.ZodString>, unknown>;
    ADMIN_TOKEN: z.ZodPreprocess<z.ZodOptional<z.ZodString>, unknown>;
    COOKIE_SECRET: z.ZodPreprocess<z.ZodOptional<z.ZodString>, unknown>;
    TOKEN_ENCRYPTION_KEY: z.ZodPreprocess<z.ZodOptional<z.ZodString>, unknown>;
    CLOSE_WINDOW: z.ZodPreprocess<z.ZodDefault<z.ZodPipe<z.ZodEnum<{
        0: "0";
        1: "1";
        true: "true";
        false: "false";
    }>, z.ZodTransform<boolean, "0" | "1" | "true" | "false">>>, unknown>;
    POST_INSTALL_URL: z.ZodPreprocess<z.ZodOptional<z.ZodPipe<z.ZodURL, z.ZodTransform<string, string>>>, unknown>;
    AUTO_FINISH: z.ZodPreprocess<z.ZodDefault<z.ZodPipe<z.ZodEnum<{
        0: "0";
        1: "1";
        true: "true";
        false: "false";
    }>, z.ZodTransform<boolean, "0" | "1" | "true" | "false">>>, unknown>;
    COOKIE_SAME_SITE: z.ZodPreprocess<z.ZodDefault<z.ZodEnum<{
        lax: "lax";
        none: "none";
    }>>, unknown>;
    CONSENT_TIMEOUT_MINUTES: z.ZodPreprocess<z.ZodDefault<z.ZodCoercedNumber<unknown>>, unknown>;
    REDIRECT_WAIT_MS: z.ZodPreprocess<z.ZodDefault<z.ZodCoercedNumber<unknown>>, unknown>;
    SHUTDOWN_GRACE_MS: z.ZodPreprocess<z.ZodDefault<z.ZodCoercedNumber<unknown>>, unknown>;
    JOB_LEASE_MS: z.ZodPreprocess<z.ZodDefault<z.ZodCoercedNumber<unknown>>, unknown>;
    HOST: z.ZodPreprocess<z.ZodDefault<z.ZodString>, unknown>;
    PORT: z.ZodPreprocess<z.ZodDefault<z.ZodCoercedNumber<unknown>>, unknown>;
    INSPECT: z.ZodPreprocess<z.ZodOptional<z.ZodString>, unknown>;
    LOG_LEVEL: z.ZodPreprocess<z.ZodDefault<z.ZodEnum<{
        error: "error";
        fatal: "fatal";
        warn: "warn";
        info: "info";
        debug: "debug";
        trace: "trace";
        silent: "silent";
    }>>, unknown>;
}, z.core.$strip>;
/** Secrets sandbox mode uses when none are configured (see `sandbox/secrets.ts`). */
export interface SandboxSecrets {
    adminToken: string;
    cookieSecret: string;
    tokenEncryptionKey: string;
    appSecret: string;
}
/** Every configuration name the environment may set (the plugin takes them in camelCase). */
export declare const CONFIG_NAMES: (keyof typeof schema.shape)[];
export type ConfigName = keyof typeof schema.shape;
/**
 * Reads the environment. A bad or missing value throws one line naming the variable and what is
 * wrong with it; nothing starts half-configured.
 */
export declare function loadConfig(env: Record<string, string | undefined>, sandboxSecrets?: () => SandboxSecrets): Config;
export {};
