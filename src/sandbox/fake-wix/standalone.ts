import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import { random } from './grants.ts'
import { wixError } from './http.ts'
import { createFakeWix } from './model.ts'
import type { FakeWixOptions } from './model-types.ts'
import { fakeWixPlugin } from './plugin.ts'

/** The fake alone on a real port, for tests and for pointing a separately run service at it. */
export async function startFakeWix(opts: Partial<FakeWixOptions> & { port?: number } = {}) {
  const wix = createFakeWix({
    ...opts,
    appId: opts.appId ?? randomUUID(),
    appSecret: opts.appSecret ?? random('fake-secret-'),
  })
  const app = Fastify({ logger: false })
  app.setNotFoundHandler((_req, reply) => wixError(reply, 404, 'Not found'))
  await app.register(fakeWixPlugin, { appId: wix.appId, appSecret: wix.appSecret, wix, allowForcedInstanceId: opts.allowForcedInstanceId ?? true })
  const address = await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 })
  return {
    url: address.replace(/\/+$/, ''),
    wix,
    close: () => app.close(),
  }
}
