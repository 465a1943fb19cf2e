import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { createInterceptor } from './intercept.ts'
import { createFakeWix } from './model.ts'
import type { FakeWix, FakeWixOptions } from './model-types.ts'
import { apiRoutes } from './routes/api.ts'
import { controlRoutes } from './routes/control.ts'
import { installerRoutes } from './routes/installer.ts'
import { oauthRoutes } from './routes/oauth.ts'
import { panelRoutes } from './routes/panel.ts'

/**
 * The fake Wix over HTTP: the installer, the OAuth and API calls, the switches and the panel, each
 * group a plugin of its own. Everything they share is set up here, before they are registered, so
 * each inherits it: the hooks, the error handler and the form parser.
 */
export async function fakeWixPlugin(fastify: FastifyInstance, opts: FakeWixOptions & { wix?: FakeWix }): Promise<void> {
  const wix = opts.wix ?? createFakeWix(opts)
  const { intercept, losing, answered } = createInterceptor(wix)
  /** Codes whose exchange is followed by AppInstalled (`appInstalledOnApprove: 'after'`), by instance. */
  const afterExchange = new Map<string, string>()

  // Held requests must not keep a closing server open.
  fastify.addHook('preClose', async () => wix.releaseAll())
  fastify.addHook('onRequest', async (_req, reply) => { reply.header('x-wix-request-id', randomUUID()) })
  // onSend, not 'finish': a request whose caller gave up still gets its status recorded.
  fastify.addHook('onSend', async (req, reply) => { answered(req, reply.statusCode) })
  fastify.setErrorHandler((error: { statusCode?: number; message: string }, _req, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
    return reply.code(status).send({ message: status < 500 ? error.message : 'Internal error', details: {} })
  })
  // For the control panel's plain forms.
  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))))
  })

  await fastify.register(installerRoutes, { wix, afterExchange, allowForcedInstanceId: opts.allowForcedInstanceId })
  await fastify.register(oauthRoutes, { wix, intercept, losing, afterExchange })
  await fastify.register(apiRoutes, { wix, intercept })
  await fastify.register(controlRoutes, { wix })
  await fastify.register(panelRoutes, { wix, appSecret: opts.appSecret })
}
