import cookie from '@fastify/cookie'
import Fastify, { type FastifyReply, type FastifyServerOptions } from 'fastify'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import type { Sql } from 'postgres'
import { SANDBOX_PREFIX, type Config } from './config.ts'
import consoleRoutes from './console/routes.ts'
import { loggerOptions } from './logging.ts'
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
import wixClient from './plugins/wix-client.ts'
import { fakeWixPlugin } from './sandbox/fake-wix.ts'
import healthRoutes from './routes/health.ts'
import homeRoutes from './routes/home.ts'
import installationRoutes from './routes/installations.ts'
import machineRoutes from './routes/machines.ts'
import wixRoutes from './routes/wix.ts'

declare module 'fastify' {
  interface FastifyInstance {
    routeList: { method: string; url: string }[]
  }
}

export interface AppOptions {
  config: Config
  /** A database client the caller owns; else one is opened from `databaseUrl`. */
  sql?: Sql
  databaseUrl?: string
  databaseMax?: number
  now?: () => Date
  engine?: EngineOptions
  logger?: FastifyServerOptions['logger']
}

/** Builds the service without listening: the server and the tests both start from here. */
export async function buildApp(opts: AppOptions) {
  const app = Fastify({
    logger: opts.logger ?? loggerOptions(opts.config.logLevel),
    // Long enough for any id we take; longer path parameters get a 414 rather than a 5xx.
    routerOptions: { maxParamLength: 200 },
    bodyLimit: 64 * 1024,
    requestIdHeader: 'x-request-id',
    trustProxy: true,
    // The database plugin waits up to 60 s for a Postgres that is restarting: let it.
    pluginTimeout: 90_000,
    // Errors raised by the router before any hook (a malformed URL, an overlong parameter).
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      const status = error.statusCode ?? 400
      reply.code(status).send({ statusCode: status, code: 'INVALID_REQUEST', error: status === 414 ? 'URI Too Long' : 'Bad Request', message: 'The URL is malformed or too long' })
    },
  }).withTypeProvider<ZodTypeProvider>()
  // Every route, as registered: the auth test walks it so no future /api route skips the token.
  const routes: { method: string; url: string }[] = []
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD') routes.push({ method, url: route.url })
  })
  app.decorate('routeList', routes)
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)

  // Infrastructure first, awaited, then the engine and the flow on top of it, then routes.
  await app.register(configPlugin, { config: opts.config, now: opts.now })
  await app.register(errorHandler)
  await app.register(cookie, { secret: opts.config.cookieSecrets })
  await app.register(database, { sql: opts.sql, url: opts.databaseUrl ?? opts.config.databaseUrl, max: opts.databaseMax })
  await app.register(databaseBreaker)
  await app.register(wixClient)
  await app.register(engine, opts.engine ?? {})
  await app.register(installFlow)
  await app.register(installationAdmin)
  await app.register(inspector)
  await app.register(openapi)
  // Before every route, so its onResponse hook counts them all.
  await app.register(metrics)

  if (opts.config.sandbox) {
    const { appId, appSecret } = opts.config.wix
    await app.register(fakeWixPlugin, { prefix: SANDBOX_PREFIX, appId, appSecret })
  }
  await app.register(healthRoutes)
  await app.register(homeRoutes)
  await app.register(wixRoutes)
  await app.register(consoleRoutes)
  await app.register(async (api) => {
    requireAdmin(api)
    await api.register(installationRoutes)
    await api.register(machineRoutes)
  })
  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
