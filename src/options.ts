import { CONFIG_NAMES, ConfigError, loadConfig, type Config, type ConfigName } from './config.ts'
import { loadSandboxSecrets } from './sandbox/secrets.ts'

/** `WIX_APP_ID` → `wixAppId`, at the type level. */
type Camel<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Lowercase<Head>}${Capitalize<Camel<Tail>>}`
  : Lowercase<S>

/** The service's own: a plugin listens and logs as the app that registers it does. */
/** TRUST_PROXY too: which proxies to believe is the host server's setting (Fastify's `trustProxy`). */
const SERVICE_ONLY = ['HOST', 'PORT', 'LOG_LEVEL', 'TRUST_PROXY'] as const
type OptionName = Exclude<ConfigName, (typeof SERVICE_ONLY)[number]>
const OPTION_NAMES = CONFIG_NAMES.filter(
  (name): name is OptionName => !(SERVICE_ONLY as readonly string[]).includes(name),
)

/**
 * The plugin's options: the configuration names of the environment in camelCase (`wixAppId`,
 * `publicUrl`, `databaseUrl`, `autoFinish`, …), with the same defaults and the same checks.
 */
export type WixInstallOptions = { [K in OptionName as Camel<K>]?: string | number | boolean | string[] } & {
  /** How long the plugin waits at start for a database it cannot reach (default 8,000 ms). */
  startTimeoutMs?: number
}

/**
 * Inside Fastify's default `pluginTimeout` (10 s): a database that is down fails the start with
 * the plugin's own error, which says what to raise, rather than Fastify's "did not start in time".
 */
export const DEFAULT_START_TIMEOUT_MS = 8_000

/** `startTimeoutMs`, checked; one the host's `pluginTimeout` (0: none) would cut short is refused. */
export function startTimeoutFrom(value: unknown, pluginTimeout: number | undefined): number {
  if (value === undefined || value === null) return DEFAULT_START_TIMEOUT_MS
  const ms = Number(value)
  if (!Number.isInteger(ms) || ms < 0) {
    throw new ConfigError('Invalid configuration: startTimeoutMs must be a whole number of milliseconds', 'startTimeoutMs')
  }
  if (pluginTimeout && ms >= pluginTimeout) {
    throw new ConfigError(`Invalid configuration: startTimeoutMs (${ms}) must be below Fastify's pluginTimeout (${pluginTimeout}): raise pluginTimeout`, 'startTimeoutMs')
  }
  return ms
}

const camel = (name: string) => name.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())

/** The options an app's environment gives: `optionsFromEnv(process.env)`. */
export function optionsFromEnv(env: Record<string, string | undefined>): WixInstallOptions {
  const options: Record<string, string> = {}
  for (const name of OPTION_NAMES) if (env[name] !== undefined) options[camel(name)] = env[name]
  return options as WixInstallOptions
}

/**
 * Validates the options as the service validates its environment; a bad value throws one line
 * naming the option, e.g. `Invalid configuration: publicUrl must be an http(s) URL`.
 */
export function configFromOptions(options: WixInstallOptions): Config {
  const given = options as Record<string, unknown>
  const env: Record<string, string | undefined> = {}
  for (const name of OPTION_NAMES) {
    const value = given[camel(name)]
    if (value !== undefined && value !== null) env[name] = Array.isArray(value) ? value.join(',') : String(value)
  }
  const unknown = Object.keys(given).find((key) => key !== 'startTimeoutMs' && !OPTION_NAMES.some((name) => camel(name) === key))
  if (unknown) throw new ConfigError(`Invalid configuration: ${unknown} is not an option of wix-install-engine`)
  try {
    return loadConfig(env, () => loadSandboxSecrets(env.DATA_DIR || './.data'))
  } catch (err) {
    if (!(err instanceof ConfigError) || !err.variable) throw err
    const option = camel(err.variable)
    throw new ConfigError(`Invalid configuration: ${option} ${err.problem}`, option, err.problem)
  }
}
