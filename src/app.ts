import { randomUUID } from 'node:crypto'
import cookie from '@fastify/cookie'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import type { Sql } from 'postgres'
import { SANDBOX_PREFIX, type Config } from './config.ts'
import consoleRoutes from './console/routes.ts'
import { loggerOptions } from './logging.ts'
import { configFromOptions, DEFAULT_START_TIMEOUT_MS, startTimeoutFrom, type WixInstallOptions } from './options.ts'
import { requireAdmin } from './plugins/admin-auth.ts'
import configPlugin from './plugins/config.ts'
import database from './plugins/database.ts'
import databaseBreaker from './plugins/database-breaker.ts'
import engine, { type EngineOptions } from './plugins/engine.ts'
import errorHandler from './plugins/error-handler.ts'
import installFlow from './plugins/install-flow.ts'
import inspector from './plugins/inspector.ts'
import installationAdmin from './plugins/installation-admin.ts'
import metrics from './plugins/metrics.ts'
import openapi from './plugins/openapi.ts'
import rateLimit from './plugins/rate-limit.ts'
import retention from './plugins/retention.ts'
import vacuum from './plugins/vacuum.ts'
import webhooks from './plugins/webhooks.ts'
import wixClient from './plugins/wix-client.ts'
import healthRoutes from './routes/health.ts'
import homeRoutes from './routes/home.ts'
import installationRoutes from './routes/installations.ts'
import machineRoutes from './routes/machines.ts'
import { responseSerializerCompiler } from './routes/serializer.ts'
import webhookRoutes from './routes/webhooks.ts'
import wixRoutes from './routes/wix.ts'

/** Every request body we take is small: a larger one is a 413, not a slow parse. */
const BODY_LIMIT = 64 * 1024

declare module 'fastify' {
  interface FastifyInstance {
    routeList: { method: string; url: string }[]
  }
}

/** What the service is built from: a loaded configuration, plus what tests and embedders inject. */
export interface ServiceOptions {
  config: Config
  /** A database client the caller owns; else one is opened from `databaseUrl`. */
  sql?: Sql
  databaseMax?: number
  now?: () => Date
  engine?: EngineOptions
  /** The service owns the whole server: it answers unknown URLs and serves the `/` landing page. */
  standalone?: boolean
  /** How long the start waits for a database it cannot reach. */
  startTimeoutMs?: number
}

/**
 * Every part of the service, in order, on the (encapsulated) context it is given: its error
 * handler, validators and hooks stay there and never touch the routes of an app that embeds it.
 */
async function registerService(app: FastifyInstance, opts: ServiceOptions & { databaseUrl?: string }) {
  // Every route, as registered: the auth test walks it so no future /api route skips the token.
  const routes: { method: string; url: string }[] = []
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD') routes.push({ method, url: route.url })
    route.bodyLimit ??= BODY_LIMIT
  })
  app.decorate('routeList', routes)
  app.setValidatorCompiler(validatorCompiler)
  // Replies through fast-json-stringify, compiled from the same zod schemas (routes/serializer.ts).
  app.setSerializerCompiler(responseSerializerCompiler)

  // Infrastructure first, awaited, then the engine and the flow on top of it, then routes.
  await app.register(configPlugin, { config: opts.config, now: opts.now })
  await app.register(errorHandler, { notFound: opts.standalone })
  await app.register(rateLimit)
  // An app that already parses cookies keeps its plugin (two cannot coexist): it signs ours too.
  if (!app.hasRequestDecorator('cookies')) await app.register(cookie, { secret: opts.config.cookieSecrets })
  await app.register(database, {
    sql: opts.sql, url: opts.databaseUrl, max: opts.databaseMax, startTimeoutMs: opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
  })
  await app.register(databaseBreaker)
  await app.register(wixClient)
  await app.register(engine, opts.engine ?? {})
  await app.register(installFlow)
  await app.register(installationAdmin)
  await app.register(webhooks)
  await app.register(inspector)
  // Tests that drive the job runner by hand drive the retention sweep by hand too.
  await app.register(retention, { schedule: opts.engine?.poll !== false })
  await app.register(vacuum, { schedule: opts.engine?.poll !== false })
  // An app with its own OpenAPI document keeps it (one per server); ours is then not served.
  if (!app.hasDecorator('swagger')) await app.register(openapi)
  // Before every route, so its onResponse hook counts them all.
  await app.register(metrics)

  if (opts.config.sandbox) {
    // Loaded in sandbox mode only: a service with Wix credentials never serves the fake Wix.
    const { fakeWixPlugin } = await import('./sandbox/fake-wix.ts')
    const { wix: { appId, appSecret }, redirectUrl, webhookUrl, sandboxWebhookKey } = opts.config
    await app.register(fakeWixPlugin, { prefix: SANDBOX_PREFIX, appId, appSecret, redirectUrl, webhookUrl, webhookPrivateKey: sandboxWebhookKey })
  }
  await app.register(healthRoutes)
  if (opts.standalone) await app.register(homeRoutes)
  await app.register(wixRoutes)
  await app.register(webhookRoutes)
  await app.register(consoleRoutes)
  await app.register(async (api) => {
    requireAdmin(api)
    await api.register(installationRoutes)
    await api.register(machineRoutes)
  })
}

/** What the plugin hands to the app that registers it. */
const SERVICE_DECORATORS = new Set([
  'config', 'now', 'sql', 'wix', 'wixCredentials', 'engine', 'vault', 'installFlow', 'installations', 'webhooks',
  'workflowInspector', 'metrics', 'retention', 'vacuum', 'routeList',
])

/** Options only the service and the tests pass; the published plugin takes `WixInstallOptions`. */
type InternalOptions = Partial<ServiceOptions> & { prefix?: string }

// Loaded only when used: production on a real Postgres never loads the WASM one.
const openEmbedded = async (dataDir: string) => (await import('./db/embedded.ts')).startEmbeddedPostgres({ dataDir })

/**
 * The Fastify plugin (`wix-install-engine/fastify`): every route of the service on the caller's
 * own instance. Options are the configuration names in camelCase; with no `databaseUrl` (and no
 * `sql`) the embedded Postgres is opened under `dataDir`. `close()` drains the engine first.
 */
const plugin: FastifyPluginAsync<WixInstallOptions & InternalOptions> = async (host, options) => {
  const { config: given, sql, databaseMax, now, engine, standalone, prefix: _, startTimeoutMs, ...rest } = options
  const config = given ?? configFromOptions(rest)
  const startWait = startTimeoutFrom(startTimeoutMs, host.initialConfig.pluginTimeout)
  const url = config.databaseUrl
  const embedded = sql || url ? undefined : await openEmbedded(config.dataDir)
  await host.register(async (scope) => {
    // It closes its own client, after everything that uses it.
    if (embedded) scope.addHook('onClose', () => embedded.close())
    await registerService(scope, {
      config,
      sql: sql ?? embedded?.connect(),
      now,
      engine,
      standalone,
      startTimeoutMs: startWait,
      databaseUrl: url,
      databaseMax,
    })
    // The host may reach what the service built (the engine, the database client, …); a decorator
    // of its own keeps its name. Other plugins' decorators (cookie, rate limit) stay inside, so the
    // host can register those plugins itself; the service's own server (standalone) gets them all.
    const own = scope as unknown as Record<string, unknown>
    for (const name of Object.keys(own)) {
      if ((standalone || SERVICE_DECORATORS.has(name)) && !(name in host)) host.decorate(name, own[name])
    }
  })
}

export const wixInstallEngine = fp(plugin, { name: 'wix-install-engine', fastify: '5.x' })

export type AppOptions = ServiceOptions & { logger?: FastifyServerOptions['logger'] }

/** Builds the service without listening: the server and the tests both start from here. */
export async function buildApp(opts: AppOptions) {
  const { logger, ...service } = opts
  const app = Fastify({
    logger: logger ?? loggerOptions(opts.config.logLevel),
    // Long enough for any id we take; longer path parameters get a 414 rather than a 5xx.
    routerOptions: { maxParamLength: 200 },
    // Ours, never the client's: a client's x-request-id is logged beside it (see logging.ts).
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    // X-Forwarded-* is believed only from the proxies TRUST_PROXY names (none by default).
    trustProxy: hops(opts.config.trustProxy),
    // The service waits up to 60 s for a Postgres that is restarting (startTimeoutMs below): let it.
    pluginTimeout: 90_000,
    // Errors raised by the router before any hook (a malformed URL, an overlong parameter).
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      const status = error.statusCode ?? 400
      reply.code(status).send({ statusCode: status, code: 'INVALID_REQUEST', error: status === 414 ? 'URI Too Long' : 'Bad Request', message: 'The URL is malformed or too long' })
    },
  }).withTypeProvider<ZodTypeProvider>()
  await app.register(wixInstallEngine, { standalone: true, startTimeoutMs: 60_000, ...service })
  return app
}

/** Fastify takes a hop count too, but its types do not say so: the function it would build. */
const hops = (trust: Config['trustProxy']) =>
  typeof trust === 'number' ? (_address: string, hop: number) => hop < trust : trust

export type App = Awaited<ReturnType<typeof buildApp>>
