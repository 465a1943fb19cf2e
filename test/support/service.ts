import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { Writable } from 'node:stream'
import { request } from 'undici'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import { loggerOptions } from '../../src/logging.ts'
import type { EngineOptions } from '../../src/plugins/engine.ts'
import { startFakeWix } from '../../src/sandbox/fake-wix.ts'
import type { TestDatabase } from './database.ts'

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef'

/** A port that was free a moment ago: PUBLIC_URL must be known before the app is built. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

export type FakeWixServer = Awaited<ReturnType<typeof startFakeWix>>

export interface ServiceOptions {
  db: TestDatabase
  env?: Record<string, string>
  now?: () => Date
  engine?: EngineOptions
  fake?: FakeWixServer
}

interface Teardown {
  teardown(fn: () => unknown): void
}

/** The environment that points a service at a fake Wix, with the test admin token. */
export const wixEnv = (fake: FakeWixServer, port: number) => ({
  WIX_APP_ID: fake.wix.appId,
  WIX_APP_SECRET: fake.wix.appSecret,
  WIX_WWW_URL: fake.url,
  WIX_API_URL: fake.url,
  WIX_PUBLIC_KEY: fake.wix.publicKeyPem,
  PUBLIC_URL: `http://127.0.0.1:${port}`,
  ADMIN_TOKEN,
})

/**
 * The key a fake Wix of this test file signs its webhooks with: made once per file, as an RSA key
 * takes 0.1–0.3 s of CPU to generate and a file starts dozens of fakes. Each service trusts its
 * own fake's public key; a key nobody trusts is made where a test forges a delivery.
 */
let webhookKey: string | undefined
const fakeWebhookKey = () =>
  (webhookKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())

/** The whole service on a real port, against a fake Wix on another, with its logs captured. */
export async function startService(t: Teardown, opts: ServiceOptions) {
  const fake = opts.fake ?? (await startFakeWix({ appId: 'test-app', appSecret: `secret-${randomBytes(12).toString('hex')}`, webhookPrivateKey: fakeWebhookKey() }))
  if (!opts.fake) t.teardown(fake.close)
  const logs: string[] = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk))
      done()
    },
  })
  const secrets = { COOKIE_SECRET: randomBytes(32).toString('hex'), TOKEN_ENCRYPTION_KEY: `k1:${randomBytes(32).toString('base64')}` }
  // The port must be known before the app is built (PUBLIC_URL), so it is one that was free a
  // moment ago: should another process take it meanwhile, this app is closed and another port tried.
  for (let tries = 1; ; tries++) {
    const port = await freePort()
    // A fake of its own knows this service's URLs, as the Wix dashboard would; a shared one serves several.
    if (!opts.fake) fake.wix.register({ redirectUrl: `http://127.0.0.1:${port}/wix/redirect`, webhookUrl: `http://127.0.0.1:${port}/wix/webhooks` })
    const config = loadConfig({
      ...wixEnv(fake, port),
      ...secrets,
      // Tests drive many flows from one address; the rate-limit tests turn it back on.
      RATE_LIMIT_PER_MINUTE: '0',
      ...opts.env,
    })
    const app = await buildApp({
      config,
      sql: opts.db.sql,
      now: opts.now,
      // Work this process starts wakes its engine at once; the poll finds the rest (due timers and
      // retries, leases run out). Each poll is a query: at 50 ms an idle service took 7% of a core.
      engine: { pollMs: 250, ...(opts.engine ?? {}) },
      logger: { ...loggerOptions('info'), stream },
    })
    try {
      await app.listen({ port, host: '127.0.0.1' })
    } catch (err) {
      await app.close()
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && tries < 5) continue
      throw err
    }
    t.teardown(() => app.close())
    return serviceOn(app, port, { fake, config, logs })
  }
}

function serviceOn(app: Awaited<ReturnType<typeof buildApp>>, port: number, { fake, config, logs }: { fake: FakeWixServer; config: ReturnType<typeof loadConfig>; logs: string[] }) {
  const url = `http://127.0.0.1:${port}`

  async function api(method: 'GET' | 'POST', path: string, o: { token?: string | null; body?: unknown } = {}) {
    const token = o.token === undefined ? ADMIN_TOKEN : o.token
    const res = await request(`${url}${path}`, {
      method,
      headers: {
        ...(token !== null && { authorization: `Bearer ${token}` }),
        ...(o.body !== undefined && { 'content-type': 'application/json' }),
      },
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
    })
    const text = await res.body.text()
    let json: any
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: res.statusCode, headers: res.headers, json, text }
  }

  return { app, url, fake, wix: fake.wix, config, logs, api }
}

export type Service = Awaited<ReturnType<typeof startService>>
