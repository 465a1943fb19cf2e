import cookie from '@fastify/cookie'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import t from 'tap'
import { request } from 'undici'
import wixInstallEngine, { optionsFromEnv } from '../src/fastify.ts'
import { startFakeWix } from '../src/sandbox/fake-wix.ts'
import { freshDatabase, needsRealPostgres } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { ADMIN_TOKEN, freePort, type Service } from './support/service.ts'

/** The plugin's options: checked like the environment, named in camelCase; and life beside a host's own plugins. */

const base = {
  adminToken: ADMIN_TOKEN,
  cookieSecret: randomBytes(32).toString('hex'),
  tokenEncryptionKey: `k1:${randomBytes(32).toString('base64')}`,
  wixAppId: 'plugin-app',
  wixAppSecret: 'plugin-secret',
  databaseUrl: 'postgres://nobody@127.0.0.1:1/never',
}

t.test('a bad option fails the registration with one line naming it, before anything opens', async (t) => {
  const cases: [Record<string, unknown>, string][] = [
    [{ ...base, publicUrl: 'not a url' }, 'Invalid configuration: publicUrl must be an http(s) URL'],
    [{ ...base, wixAppSecret: undefined }, 'Invalid configuration: wixAppSecret must be set together with the other'],
    [{ ...base, cookieSecret: 'short' }, 'Invalid configuration: cookieSecret must be at least 32 characters'],
    [{ ...base, autoFinish: 'sometimes' }, 'Invalid configuration: autoFinish must be true or false'],
    [{ ...base, wixAppSecrett: 'typo' }, 'Invalid configuration: wixAppSecrett is not an option of wix-install-engine'],
    [{ ...base, port: 3000 }, 'Invalid configuration: port is not an option of wix-install-engine'],
    [{ ...base, startTimeoutMs: 'soon' }, 'Invalid configuration: startTimeoutMs must be a whole number of milliseconds'],
    // Fastify's default pluginTimeout is 10 s: its own timeout would hide the plugin's error.
    [{ ...base, startTimeoutMs: 10_000 }, "Invalid configuration: startTimeoutMs (10000) must be below Fastify's pluginTimeout (10000): raise pluginTimeout"],
  ]
  for (const [options, message] of cases) {
    const app = Fastify({ logger: false })
    app.get('/hello', async () => 'hi')
    const error = await app.register(wixInstallEngine, options as never).ready().then(() => undefined, (e: Error) => e)
    t.match(error?.message, message, message)
    t.notMatch(error?.message ?? '', /\n/, 'on one line')
    t.notMatch(error?.message ?? '', options.cookieSecret as string, 'without the secret')
    await app.close().catch(() => {})
  }
})

t.test('a database that stays unreachable fails the start after startTimeoutMs, in one line saying what to raise', async (t) => {
  const app = Fastify({ logger: false })
  // base's databaseUrl is a port nobody listens on: every connection is refused.
  const error = await app.register(wixInstallEngine, { ...base, startTimeoutMs: 300 }).ready().then(() => undefined, (e: Error) => e)
  t.teardown(() => app.close().catch(() => {}))
  t.equal(error?.message,
    "Database unreachable (ECONNREFUSED) for startTimeoutMs (300 ms): to wait longer, raise startTimeoutMs and Fastify's pluginTimeout above it",
    "the plugin's own error, not Fastify's timeout: it names both settings, on one line")
  t.notMatch(error?.message ?? '', /nobody|127\.0\.0\.1/, 'and not the database URL')
})

t.test('optionsFromEnv takes the environment names, not the service-only ones', async (t) => {
  const options = optionsFromEnv({ WIX_APP_ID: 'a', PUBLIC_URL: 'https://x.example', AUTO_FINISH: 'true', PORT: '1', HOME: '/root' })
  t.same(options, { wixAppId: 'a', publicUrl: 'https://x.example', autoFinish: 'true' }, 'camelCase, HOST/PORT/LOG_LEVEL left to the app')
})

t.test('beside a host that already parses cookies with its own plugin', { skip: needsRealPostgres('the plugin opens a pool of its own') }, async (t) => {
  const db = await freshDatabase()
  t.teardown(db.drop)
  const fake = await startFakeWix({ appId: 'host-app', appSecret: `secret-${randomBytes(8).toString('hex')}` })
  t.teardown(fake.close)
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const app = Fastify({ logger: false })
  await app.register(cookie, { secret: randomBytes(32).toString('hex') })
  app.get('/hello', async (request) => ({ cookies: request.cookies }))
  await app.register(wixInstallEngine, {
    ...base,
    wixAppId: fake.wix.appId,
    wixAppSecret: fake.wix.appSecret,
    wixWwwUrl: fake.url,
    wixApiUrl: fake.url,
    publicUrl: url,
    databaseUrl: db.url,
  })
  await app.listen({ port, host: '127.0.0.1' })
  t.teardown(() => app.close())

  const hello = await request(`${url}/hello`, { headers: { cookie: 'a=b' } })
  t.same(await hello.body.json(), { cookies: { a: 'b' } }, 'the host’s cookie plugin still serves its routes')
  const owner = siteOwner({ url } as Service)
  t.equal((await owner.openAppUrl()).status, 302, 'the App URL sets the state cookie with the host’s plugin')
  const done = await owner.callback(await owner.approve())
  t.equal(done.status, 302, 'and the signed cookie checks out at the Redirect URL')
  t.match(done.location, `${url}/?instanceId=`, 'the install reaches the post-install page')
  t.ok(app.engine && app.sql, 'the host can reach the engine and the database client')
})
