import { z } from 'zod'
import { parseCipherKeys, type CipherKey } from './crypto/token-cipher.ts'

/** Where the built-in fake Wix is mounted in sandbox mode. */
export const SANDBOX_PREFIX = '/_sandbox/wix'

export interface Config {
  /** No Wix credentials: a fake Wix is served by this process and the flow runs against it. */
  sandbox: boolean
  wix: { appId: string; appSecret: string; wwwUrl: string; apiUrl: string }
  publicUrl: string
  redirectUrl: string
  postInstallUrl: string
  closeWindow: boolean
  autoFinish: boolean
  databaseUrl: string | undefined
  dataDir: string
  adminToken: string
  cookieSecrets: string[]
  tokenKeys: CipherKey[]
  /** `none` lets the state cookie survive inside Wix's iframe; it needs an https PUBLIC_URL. */
  cookieSameSite: 'lax' | 'none'
  secureCookies: boolean
  consentTimeoutMs: number
  /** How long the Redirect URL holds the browser for the code exchange before a waiting page. */
  redirectWaitMs: number
  /** On SIGTERM, how long running effects may finish before they are aborted and handed over. */
  shutdownGraceMs: number
  /** How long a claimed job is an instance's before others may take it (its runner presumed dead). */
  jobLeaseMs: number
  host: string
  port: number
  logLevel: string
  /** Send transitions to the XState inspector: a ws:// URL, or `true` to start its server here. */
  inspect: string | undefined
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

const url = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).transform((u) => u.replace(/\/+$/, ''))
const bool = z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).transform((v) => v === 'true' || v === '1')
const blankIsUnset = (v: unknown) => (v === '' ? undefined : v)

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
  JOB_LEASE_MS: z.preprocess(blankIsUnset, z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(2_000).max(3_600_000).default(6_000)),
  HOST: z.preprocess(blankIsUnset, z.string().default('127.0.0.1')),
  PORT: z.preprocess(blankIsUnset, z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0).max(65535).default(3000)),
  INSPECT: z.preprocess(blankIsUnset, z.string().regex(/^(true|1|wss?:\/\/\S+)$/, 'must be true or a ws:// URL of an inspector').optional()),
  LOG_LEVEL: z.preprocess(blankIsUnset, z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
})

/** Secrets sandbox mode uses when none are configured (see `sandbox/secrets.ts`). */
export interface SandboxSecrets {
  adminToken: string
  cookieSecret: string
  tokenEncryptionKey: string
  appSecret: string
}

const fail = (name: string, problem: string): never => {
  throw new ConfigError(`Invalid configuration: ${name} ${problem}`)
}

/**
 * Reads the environment. A bad or missing value throws one line naming the variable and what is
 * wrong with it; nothing starts half-configured.
 */
export function loadConfig(env: Record<string, string | undefined>, sandboxSecrets?: () => SandboxSecrets): Config {
  const parsed = schema.safeParse(env)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    fail(String(issue.path[0]), issue.message)
  }
  const e = parsed.data!
  if (Boolean(e.WIX_APP_ID) !== Boolean(e.WIX_APP_SECRET)) {
    fail(e.WIX_APP_ID ? 'WIX_APP_SECRET' : 'WIX_APP_ID', 'must be set together with the other (or both left unset for sandbox mode)')
  }
  const sandbox = !e.WIX_APP_ID
  const generated = sandbox ? sandboxSecrets?.() : undefined
  const need = (name: string, value: string | undefined, fallback: string | undefined) =>
    value ?? fallback ?? fail(name, sandbox ? 'is required (sandbox secrets were not provided)' : 'is required outside sandbox mode')

  const adminToken = need('ADMIN_TOKEN', e.ADMIN_TOKEN, generated?.adminToken)
  const cookieSecrets = need('COOKIE_SECRET', e.COOKIE_SECRET, generated?.cookieSecret).split(',').map((s) => s.trim())
  if (cookieSecrets.some((s) => s.length < 32)) fail('COOKIE_SECRET', 'must be at least 32 characters (comma-separate several to rotate)')
  let tokenKeys: CipherKey[] = []
  try {
    tokenKeys = parseCipherKeys(need('TOKEN_ENCRYPTION_KEY', e.TOKEN_ENCRYPTION_KEY, generated?.tokenEncryptionKey))
  } catch (err) {
    if (err instanceof ConfigError) throw err
    fail('TOKEN_ENCRYPTION_KEY', (err as Error).message)
  }
  const secureCookies = e.PUBLIC_URL.startsWith('https:')
  if (e.COOKIE_SAME_SITE === 'none' && !secureCookies) fail('COOKIE_SAME_SITE', 'none needs an https PUBLIC_URL (browsers drop SameSite=None cookies without Secure)')

  const sandboxWix = `${e.PUBLIC_URL}${SANDBOX_PREFIX}`
  return {
    sandbox,
    wix: sandbox
      ? { appId: 'sandbox-app', appSecret: generated?.appSecret ?? 'sandbox-secret', wwwUrl: sandboxWix, apiUrl: sandboxWix }
      : { appId: e.WIX_APP_ID!, appSecret: e.WIX_APP_SECRET!, wwwUrl: e.WIX_WWW_URL, apiUrl: e.WIX_API_URL },
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
  }
}
