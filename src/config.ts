import { createPrivateKey, createPublicKey } from 'node:crypto'
import { z } from 'zod'
import { isIP } from 'node:net'
import { parseCipherKeys, type CipherKey } from './crypto/token-cipher.ts'
import { estimatedBits, weakness } from './secret-strength.ts'

/** Where the built-in fake Wix is mounted in sandbox mode. */
export const SANDBOX_PREFIX = '/_sandbox/wix'

export interface Config {
  /** No Wix credentials: a fake Wix is served by this process and the flow runs against it. */
  sandbox: boolean
  wix: { appId: string; appSecret: string; wwwUrl: string; apiUrl: string }
  publicUrl: string
  redirectUrl: string
  /** Where Wix posts webhooks: `${publicUrl}/wix/webhooks`. */
  webhookUrl: string
  /** The app's public key (SPKI PEM) that verifies webhook JWTs; unset: webhooks answer 503. */
  wixPublicKey: string | undefined
  /** Sandbox only: the fake Wix's webhook signing key (PKCS#8 PEM), the pair of `wixPublicKey`. */
  sandboxWebhookKey: string | undefined
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
  /** Where `INSPECT=true` starts the inspector's local server (127.0.0.1). */
  inspectPort: number
  /** The app's name on the pages a site owner sees. */
  appName: string
  /** Requests per minute per client address on the open `/wix/*` routes; 0 turns limiting off. */
  rateLimitPerMinute: number
  /** Installations started per minute (`/wix/app-url`, `/wix/install`), all clients together; 0: no cap. */
  rateLimitStartsPerMinute: number
  /** Which proxies' `X-Forwarded-*` to believe, as Fastify's `trustProxy` takes it; false: none. */
  trustProxy: boolean | number | string[]
  /** Wix calls this instance may retry per minute, all installations together; 0: no cap. */
  wixRetriesPerMinute: number
  /** How long `/metrics` reuses its database-derived gauges; 0: recomputed at every scrape. */
  metricsMaxAgeMs: number
  /** When set, `/metrics` wants `Authorization: Bearer <it>`; unset, it is open like /healthz. */
  metricsToken: string | undefined
  retention: RetentionConfig
  /** Which install flows the app uses: the legacy Redirect URL flow, Wix's current OAuth (webhook + client credentials), or both. */
  wixAuthFlow: 'legacy' | 'oauth' | 'both'
  /** An AppInstalled for a cloned site: confirm it by client credentials, or ask the owner to reinstall. */
  clonedSitePolicy: 'confirm' | 'reinstall'
}

/** Ages after which old data goes (0 keeps it forever), and how often the sweep runs. */
export interface RetentionConfig {
  /** History and effect attempts of Finished installations (the installation and its tokens stay). */
  historyMs: number
  /** Failed, cancelled and uninstalled installations that hold no tokens: the whole installation. */
  failedMs: number
  /** Installations nobody came back to from Wix's consent screen (ConsentAbandoned, no tokens). */
  abandonedMs: number
  /** Webhook deliveries once processed. */
  webhooksMs: number
  intervalMs: number
}

/** This package's name: APP_NAME's default. */
export const PACKAGE_NAME = 'wix-install-engine'

export class ConfigError extends Error {
  override name = 'ConfigError'
  /** The variable at fault and what is wrong with it, so the plugin can name its option instead. */
  constructor(
    message: string,
    readonly variable?: string,
    readonly problem?: string,
  ) {
    super(message)
  }
}

const url = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).transform((u) => u.replace(/\/+$/, ''))
const bool = z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).transform((v) => v === 'true' || v === '1')
const blankIsUnset = (v: unknown) => (v === '' ? undefined : v)
const whole = (min: number, max: number, fallback: number) =>
  z.preprocess(
    blankIsUnset,
    z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(min).max(max).default(fallback),
  )

/** proxy-addr's names for address ranges, besides addresses and CIDRs. */
const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal'])
const isProxyEntry = (entry: string) => {
  const [address, bits, extra] = entry.split('/')
  if (extra !== undefined || !address) return false
  if (bits === undefined) return PROXY_NAMES.has(address) || isIP(address) !== 0
  return isIP(address) !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= (isIP(address) === 4 ? 32 : 128)
}
/** Unset or false: trust no proxy. A hop count, true (every proxy: only behind one you own), or a list. */
const trustProxy = z.preprocess(
  blankIsUnset,
  z
    .string()
    .default('false')
    .transform((v, ctx): boolean | number | string[] => {
      if (v === 'false' || v === '0') return false
      if (v === 'true') return true
      if (/^\d{1,2}$/.test(v)) return Number(v)
      const list = v.split(',').map((e) => e.trim())
      const bad = list.find((e) => !isProxyEntry(e))
      if (bad === undefined) return list
      const message = `must be a hop count, true, or addresses/CIDRs separated by commas (not "${bad.slice(0, 50)}")`
      ctx.addIssue({ code: 'custom', message })
      return z.NEVER
    }),
)

const schema = z.object({
  WIX_APP_ID: z.preprocess(blankIsUnset, z.string().optional()),
  WIX_APP_SECRET: z.preprocess(blankIsUnset, z.string().optional()),
  // Unset: http://localhost:${PORT}, so the printed URL and the sandbox's calls follow the port.
  PUBLIC_URL: z.preprocess(blankIsUnset, url.optional()),
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
  WIX_PUBLIC_KEY: z.preprocess(blankIsUnset, z.string().optional()),
  INSPECT: z.preprocess(blankIsUnset, z.string().regex(/^(true|1|wss?:\/\/\S+)$/, 'must be true or a ws:// URL of an inspector').optional()),
  INSPECT_PORT: whole(1, 65535, 8080),
  APP_NAME: z.preprocess(blankIsUnset, z.string().trim().min(1).max(80, 'must be at most 80 characters').default(PACKAGE_NAME)),
  LOG_LEVEL: z.preprocess(blankIsUnset, z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
  RATE_LIMIT_PER_MINUTE: whole(0, 1_000_000, 120),
  RATE_LIMIT_STARTS_PER_MINUTE: whole(0, 1_000_000, 600),
  TRUST_PROXY: trustProxy,
  WIX_RETRIES_PER_MINUTE: whole(0, 1_000_000, 120),
  METRICS_MAX_AGE_SECONDS: whole(0, 3600, 5),
  METRICS_TOKEN: z.preprocess(blankIsUnset, z.string().optional()),
  RETENTION_HISTORY_DAYS: whole(0, 36_500, 90),
  RETENTION_FAILED_DAYS: whole(0, 36_500, 30),
  RETENTION_ABANDONED_HOURS: whole(0, 876_000, 24),
  RETENTION_WEBHOOK_DAYS: whole(0, 36_500, 7),
  RETENTION_INTERVAL_MINUTES: whole(1, 10_080, 60),
  WIX_AUTH_FLOW: z.preprocess(blankIsUnset, z.enum(['legacy', 'oauth', 'both'], { error: 'must be legacy, oauth or both' }).default('both')),
  CLONED_SITE_POLICY: z.preprocess(blankIsUnset, z.enum(['confirm', 'reinstall'], { error: 'must be confirm or reinstall' }).default('confirm')),
})

/** Secrets sandbox mode uses when none are configured (see `sandbox/secrets.ts`). */
export interface SandboxSecrets {
  adminToken: string
  cookieSecret: string
  tokenEncryptionKey: string
  appSecret: string
  /** The sandbox Wix's webhook signing key (PKCS#8 PEM). */
  webhookPrivateKey: string
}

/** Every configuration name the environment may set (the plugin takes them in camelCase). */
export const CONFIG_NAMES = Object.keys(schema.shape) as (keyof typeof schema.shape)[]
export type ConfigName = keyof typeof schema.shape

const fail = (name: string, problem: string): never => {
  throw new ConfigError(`Invalid configuration: ${name} ${problem}`, name, problem)
}

/**
 * The app's public key as the Wix dashboard shows it: a PEM, or that PEM base64-encoded on one
 * line (both as Wix's own SDK takes it). Returned as a normalised SPKI PEM of an RSA key.
 */
export function parsePublicKey(value: string): string {
  const text = value.trim()
  const pem = text.startsWith('-----BEGIN') ? text : Buffer.from(text, 'base64').toString('utf8').trim()
  if (!pem.startsWith('-----BEGIN PUBLIC KEY-----')) {
    return fail('WIX_PUBLIC_KEY', 'must be the public key PEM from the Wix app dashboard (or that PEM base64-encoded)')
  }
  let key
  try {
    key = createPublicKey(pem.replace(/\\n/g, '\n'))
  } catch {
    return fail('WIX_PUBLIC_KEY', 'is not a readable public key PEM')
  }
  if (key.asymmetricKeyType !== 'rsa') fail('WIX_PUBLIC_KEY', `must be an RSA key (Wix signs webhooks with RS256), not ${key.asymmetricKeyType}`)
  return key.export({ type: 'spki', format: 'pem' }).toString()
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

  // Guessable secrets are refused: the admin token opens /api, the cookie secret forges states.
  const adminToken = need('ADMIN_TOKEN', e.ADMIN_TOKEN, generated?.adminToken)
  const adminWeakness = weakness(adminToken, 24, 72)
  if (adminWeakness) fail('ADMIN_TOKEN', `${adminWeakness} (e.g. openssl rand -base64 32)`)
  const cookieSecrets = need('COOKIE_SECRET', e.COOKIE_SECRET, generated?.cookieSecret).split(',').map((s) => s.trim())
  const cookieWeakness = cookieSecrets.map((s) => weakness(s, 32, 128)).find(Boolean)
  if (cookieWeakness) {
    fail('COOKIE_SECRET', `${cookieWeakness}, each of them (e.g. openssl rand -base64 32; comma-separate to rotate)`)
  }
  let tokenKeys: CipherKey[] = []
  try {
    tokenKeys = parseCipherKeys(need('TOKEN_ENCRYPTION_KEY', e.TOKEN_ENCRYPTION_KEY, generated?.tokenEncryptionKey))
  } catch (err) {
    if (err instanceof ConfigError) throw err
    fail('TOKEN_ENCRYPTION_KEY', (err as Error).message)
  }
  const metricsWeakness = e.METRICS_TOKEN === undefined ? undefined : weakness(e.METRICS_TOKEN, 24, 72)
  if (metricsWeakness) fail('METRICS_TOKEN', `${metricsWeakness} (e.g. openssl rand -base64 32)`)
  const weakKey = tokenKeys.find((k) => estimatedBits(k.key) < 96)
  if (weakKey) fail('TOKEN_ENCRYPTION_KEY', `key ${weakKey.id} is not random enough (use openssl rand -base64 32)`)
  const publicUrl = e.PUBLIC_URL ?? `http://localhost:${e.PORT}`
  const secureCookies = publicUrl.startsWith('https:')
  if (e.COOKIE_SAME_SITE === 'none' && !secureCookies) fail('COOKIE_SAME_SITE', 'none needs an https PUBLIC_URL (browsers drop SameSite=None cookies without Secure)')

  const sandboxWix = `${publicUrl}${SANDBOX_PREFIX}`
  const sandboxWebhookKey = sandbox ? generated?.webhookPrivateKey : undefined
  const wixPublicKey = e.WIX_PUBLIC_KEY !== undefined
    ? parsePublicKey(e.WIX_PUBLIC_KEY)
    : sandboxWebhookKey && createPublicKey(createPrivateKey(sandboxWebhookKey)).export({ type: 'spki', format: 'pem' }).toString()
  return {
    sandbox,
    wix: sandbox
      ? { appId: 'sandbox-app', appSecret: generated?.appSecret ?? 'sandbox-secret', wwwUrl: sandboxWix, apiUrl: sandboxWix }
      : { appId: e.WIX_APP_ID!, appSecret: e.WIX_APP_SECRET!, wwwUrl: e.WIX_WWW_URL, apiUrl: e.WIX_API_URL },
    publicUrl,
    redirectUrl: `${publicUrl}/wix/redirect`,
    webhookUrl: `${publicUrl}/wix/webhooks`,
    wixPublicKey: wixPublicKey || undefined,
    sandboxWebhookKey,
    postInstallUrl: e.POST_INSTALL_URL ?? `${publicUrl}/`,
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
    inspectPort: e.INSPECT_PORT,
    appName: e.APP_NAME,
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
    rateLimitStartsPerMinute: e.RATE_LIMIT_STARTS_PER_MINUTE,
    trustProxy: e.TRUST_PROXY,
    wixRetriesPerMinute: e.WIX_RETRIES_PER_MINUTE,
    metricsMaxAgeMs: e.METRICS_MAX_AGE_SECONDS * 1000,
    metricsToken: e.METRICS_TOKEN,
    retention: {
      historyMs: e.RETENTION_HISTORY_DAYS * DAY,
      failedMs: e.RETENTION_FAILED_DAYS * DAY,
      abandonedMs: e.RETENTION_ABANDONED_HOURS * HOUR,
      webhooksMs: e.RETENTION_WEBHOOK_DAYS * DAY,
      intervalMs: e.RETENTION_INTERVAL_MINUTES * 60_000,
    },
    wixAuthFlow: e.WIX_AUTH_FLOW,
    clonedSitePolicy: e.CLONED_SITE_POLICY,
  }
}

const HOUR = 3_600_000
const DAY = 24 * HOUR
