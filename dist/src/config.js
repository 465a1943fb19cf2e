import { z } from 'zod';
import { parseCipherKeys } from "./crypto/token-cipher.js";
/** Where the built-in fake Wix is mounted in sandbox mode. */
export const SANDBOX_PREFIX = '/_sandbox/wix';
export class ConfigError extends Error {
    variable;
    problem;
    name = 'ConfigError';
    /** The variable at fault and what is wrong with it, so the plugin can name its option instead. */
    constructor(message, variable, problem) {
        super(message);
        this.variable = variable;
        this.problem = problem;
    }
}
const url = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).transform((u) => u.replace(/\/+$/, ''));
const bool = z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).transform((v) => v === 'true' || v === '1');
const blankIsUnset = (v) => (v === '' ? undefined : v);
const schema = z.object({
    WIX_APP_ID: z.preprocess(blankIsUnset, z.string().optional()),
    WIX_APP_SECRET: z.preprocess(blankIsUnset, z.string().optional()),
    PUBLIC_URL: z.preprocess(blankIsUnset, url.default('http://localhost:3000')),
    WIX_WWW_URL: z.preprocess(blankIsUnset, url.default('https://www.wix.com')),
    WIX_API_URL: z.preprocess(blankIsUnset, url.default('https://www.wixapis.com')),
    DATABASE_URL: z.preprocess(blankIsUnset, z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional()),
    DATA_DIR: z.preprocess(blankIsUnset, z.string().default('./.data')),
    ADMIN_TOKEN: z.preprocess(blankIsUnset, z.string().min(24, 'must be at least 24 characters').optional()),
    COOKIE_SECRET: z.preprocess(blankIsUnset, z.string().optional()),
    TOKEN_ENCRYPTION_KEY: z.preprocess(blankIsUnset, z.string().optional()),
    CLOSE_WINDOW: z.preprocess(blankIsUnset, bool.default(false)),
    POST_INSTALL_URL: z.preprocess(blankIsUnset, url.optional()),
    AUTO_FINISH: z.preprocess(blankIsUnset, bool.default(false)),
    COOKIE_SAME_SITE: z.preprocess(blankIsUnset, z.enum(['lax', 'none'], { error: 'must be lax or none' }).default('lax')),
    CONSENT_TIMEOUT_MINUTES: z.preprocess(blankIsUnset, z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1).max(24 * 60).default(30)),
    REDIRECT_WAIT_MS: z.preprocess(blankIsUnset, z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0).max(60_000).default(10_000)),
    SHUTDOWN_GRACE_MS: z.preprocess(blankIsUnset, z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0).max(120_000).default(10_000)),
    JOB_LEASE_MS: z.preprocess(blankIsUnset, z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(5_000).max(3_600_000).default(60_000)),
    HOST: z.preprocess(blankIsUnset, z.string().default('127.0.0.1')),
    PORT: z.preprocess(blankIsUnset, z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0).max(65535).default(3000)),
    INSPECT: z.preprocess(blankIsUnset, z.string().regex(/^(true|1|wss?:\/\/\S+)$/, 'must be true or a ws:// URL of an inspector').optional()),
    LOG_LEVEL: z.preprocess(blankIsUnset, z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
});
/** Every configuration name the environment may set (the plugin takes them in camelCase). */
export const CONFIG_NAMES = Object.keys(schema.shape);
const fail = (name, problem) => {
    throw new ConfigError(`Invalid configuration: ${name} ${problem}`, name, problem);
};
/**
 * Reads the environment. A bad or missing value throws one line naming the variable and what is
 * wrong with it; nothing starts half-configured.
 */
export function loadConfig(env, sandboxSecrets) {
    const parsed = schema.safeParse(env);
    if (!parsed.success) {
        const issue = parsed.error.issues[0];
        fail(String(issue.path[0]), issue.message);
    }
    const e = parsed.data;
    if (Boolean(e.WIX_APP_ID) !== Boolean(e.WIX_APP_SECRET)) {
        fail(e.WIX_APP_ID ? 'WIX_APP_SECRET' : 'WIX_APP_ID', 'must be set together with the other (or both left unset for sandbox mode)');
    }
    const sandbox = !e.WIX_APP_ID;
    const generated = sandbox ? sandboxSecrets?.() : undefined;
    const need = (name, value, fallback) => value ?? fallback ?? fail(name, sandbox ? 'is required (sandbox secrets were not provided)' : 'is required outside sandbox mode');
    const adminToken = need('ADMIN_TOKEN', e.ADMIN_TOKEN, generated?.adminToken);
    const cookieSecrets = need('COOKIE_SECRET', e.COOKIE_SECRET, generated?.cookieSecret).split(',').map((s) => s.trim());
    if (cookieSecrets.some((s) => s.length < 32))
        fail('COOKIE_SECRET', 'must be at least 32 characters (comma-separate several to rotate)');
    let tokenKeys = [];
    try {
        tokenKeys = parseCipherKeys(need('TOKEN_ENCRYPTION_KEY', e.TOKEN_ENCRYPTION_KEY, generated?.tokenEncryptionKey));
    }
    catch (err) {
        if (err instanceof ConfigError)
            throw err;
        fail('TOKEN_ENCRYPTION_KEY', err.message);
    }
    const secureCookies = e.PUBLIC_URL.startsWith('https:');
    if (e.COOKIE_SAME_SITE === 'none' && !secureCookies)
        fail('COOKIE_SAME_SITE', 'none needs an https PUBLIC_URL (browsers drop SameSite=None cookies without Secure)');
    const sandboxWix = `${e.PUBLIC_URL}${SANDBOX_PREFIX}`;
    return {
        sandbox,
        wix: sandbox
            ? { appId: 'sandbox-app', appSecret: generated?.appSecret ?? 'sandbox-secret', wwwUrl: sandboxWix, apiUrl: sandboxWix }
            : { appId: e.WIX_APP_ID, appSecret: e.WIX_APP_SECRET, wwwUrl: e.WIX_WWW_URL, apiUrl: e.WIX_API_URL },
        publicUrl: e.PUBLIC_URL,
        redirectUrl: `${e.PUBLIC_URL}/wix/redirect`,
        postInstallUrl: e.POST_INSTALL_URL ?? `${e.PUBLIC_URL}/`,
        closeWindow: e.CLOSE_WINDOW,
        autoFinish: e.AUTO_FINISH,
        databaseUrl: e.DATABASE_URL,
        dataDir: e.DATA_DIR,
        adminToken,
        cookieSecrets,
        tokenKeys,
        cookieSameSite: e.COOKIE_SAME_SITE,
        secureCookies,
        consentTimeoutMs: e.CONSENT_TIMEOUT_MINUTES * 60_000,
        redirectWaitMs: e.REDIRECT_WAIT_MS,
        shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
        jobLeaseMs: e.JOB_LEASE_MS,
        host: e.HOST,
        port: e.PORT,
        logLevel: e.LOG_LEVEL,
        inspect: e.INSPECT,
    };
}
