/**
 * One complete install, end to end, run by Deno (test/deno.test.ts spawns it):
 *
 *   deno run -A --node-modules-dir=manual test/deno/flow.ts
 *
 * Against the Postgres at DATABASE_URL, on a database of its own that it creates, migrates and
 * drops. A fake Wix on its own port, the service on another, and a browser made of plain `fetch`
 * calls carrying the cookies by hand. Prints `ok` and exits 0, or prints what failed and exits 1.
 */
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import postgres from 'postgres'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import { connect } from '../../src/db/connect.ts'
import { migrate } from '../../src/db/migrate.ts'
import { startFakeWix } from '../../src/sandbox/fake-wix.ts'

const ADMIN_TOKEN = 'deno-admin-token-0123456789abcdef'
const INSTANCE_ID = '5d0c9a1e-7b2f-4e1a-9c3d-0123456789ab'

const failures: string[] = []
function check(ok: unknown, what: string, got?: unknown) {
  if (!ok) failures.push(got === undefined ? what : `${what} (got ${JSON.stringify(got)})`)
  return Boolean(ok)
}

/** A port that was free a moment ago: PUBLIC_URL must be known before the app is built. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

/** GETs without following redirects, keeping the cookies it is sent (name → value). */
function browser() {
  const jar = new Map<string, string>()
  return async (url: string) => {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html', ...(cookie && { cookie }) } })
    for (const line of res.headers.getSetCookie()) {
      const pair = line.split(';')[0]!
      const eq = pair.indexOf('=')
      const [name, value] = [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()]
      if (value === '' || /max-age=0/i.test(line)) jar.delete(name)
      else jar.set(name, value)
    }
    await res.body?.cancel()
    return { status: res.status, location: res.headers.get('location') }
  }
}

async function api(base: string, method: 'GET' | 'POST', path: string) {
  const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  return { status: res.status, json: (await res.json()) as Record<string, any> }
}

async function install(serverUrl: string) {
  const name = `wie_deno_${randomBytes(6).toString('hex')}`
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database ${name}`)
  const dbUrl = new URL(serverUrl)
  dbUrl.pathname = `/${name}`
  const sql = connect(dbUrl.toString())
  const closers: (() => Promise<unknown>)[] = [
    () => admin.unsafe(`drop database if exists ${name} with (force)`).then(() => admin.end()),
    () => sql.end({ timeout: 1 }),
  ]
  try {
    check((await migrate(sql)).length > 0, 'migrations apply to the new database')

    const fake = await startFakeWix({ appId: 'deno-app', appSecret: `secret-${randomBytes(12).toString('hex')}` })
    closers.unshift(fake.close)
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const config = loadConfig({
      WIX_APP_ID: fake.wix.appId,
      WIX_APP_SECRET: fake.wix.appSecret,
      WIX_WWW_URL: fake.url,
      WIX_API_URL: fake.url,
      PUBLIC_URL: base,
      ADMIN_TOKEN,
      COOKIE_SECRET: randomBytes(32).toString('hex'),
      TOKEN_ENCRYPTION_KEY: `k1:${randomBytes(32).toString('base64')}`,
      LOG_LEVEL: 'warn',
    })
    const app = await buildApp({ config, sql, engine: { pollMs: 50 } })
    await app.listen({ port, host: '127.0.0.1' })
    closers.unshift(() => app.close())

    const get = browser()
    const first = await get(`${base}/wix/app-url?token=deno-install-token`)
    if (!check(first.status === 302 && first.location, 'the App URL redirects to the installer', first)) return
    const installer = new URL(first.location!)
    check(`${installer.origin}${installer.pathname}` === `${fake.url}/installer/install`, 'to the fake Wix installer', installer.href)
    check(installer.searchParams.get('redirectUrl') === `${base}/wix/redirect`, 'with our Redirect URL')

    const approve = new URL(installer.href.replace('/installer/install', '/installer/approve'))
    approve.searchParams.set('instanceId', INSTANCE_ID)
    const consent = await get(approve.href)
    if (!check(consent.status === 302 && consent.location, 'the consent screen sends the browser back', consent)) return
    const back = new URL(consent.location!)
    check(back.pathname === '/wix/redirect' && back.searchParams.get('code'), 'to our Redirect URL with a code', back.pathname)

    const done = await get(back.href)
    check(done.status === 302, 'the Redirect URL sends the browser on', done)
    check(done.location === `${base}/?instanceId=${INSTANCE_ID}`, 'to the post-install page', done.location)

    const setup = await api(base, 'GET', `/api/installations/${INSTANCE_ID}`)
    check(setup.json.state === 'SetupIncomplete', 'after the callback the installation is SetupIncomplete', setup.json.state)

    const finish = await api(base, 'POST', `/api/installations/${INSTANCE_ID}/finish`)
    check(finish.status === 200, 'finish answers 200', finish.status)
    const one = await api(base, 'GET', `/api/installations/${INSTANCE_ID}`)
    check(one.json.state === 'Finished', 'the installation is Finished', one.json.state)
    const [row] = await sql<{ state: string }[]>`select state from wix_engine.workflows where key = ${INSTANCE_ID}`
    check(row?.state === 'Finished', 'and its row in Postgres says Finished', row)

    const calls = fake.wix.requests.map((r) => `${r.endpoint} ${(r.body as { grant_type?: string }).grant_type ?? ''}`.trim())
    check(
      JSON.stringify(calls) === JSON.stringify(['oauth/access authorization_code', 'oauth2/token-info', 'oauth/access refresh_token', 'bi-event']),
      'Wix received exactly the code exchange, the instance lookup, a refresh and the bi-event',
      calls,
    )
    const bi = fake.wix.requests.at(-1)
    check(JSON.stringify(bi?.body) === '{"eventName":"APP_FINISHED_CONFIGURATION"}', 'the bi-event is APP_FINISHED_CONFIGURATION', bi?.body)
    check(fake.wix.isValidAccessToken(String(bi?.headers.authorization)), 'sent with a valid raw access token')
  } finally {
    for (const close of closers) await close().catch((err) => failures.push(`cleanup: ${err}`))
  }
}

const url = process.env.DATABASE_URL
if (!url) {
  console.log('DATABASE_URL is not set: this flow runs on a real Postgres server')
  process.exit(1)
}
const runtime = 'Deno' in globalThis ? `deno ${(globalThis as any).Deno.version.deno}` : `node ${process.version}`
try {
  await install(url)
} catch (err) {
  failures.push(`threw: ${(err as Error).stack ?? err}`)
}
if (failures.length) {
  console.log(`FAILED on ${runtime}:\n- ${failures.join('\n- ')}`)
  process.exit(1)
}
console.log(`ok (${runtime})`)
process.exit(0)
