import cookie from '@fastify/cookie'
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import Fastify from 'fastify'
import postgres from 'postgres'
import { request } from 'undici'
import { createTokenCipher, parseCipherKeys } from '../../src/crypto/token-cipher.ts'

/**
 * The bare reference the benchmark holds the engine against: the same three routes as a team
 * would write them by hand — one table, plain SQL, the code exchange and the finish calls made
 * inline in the request. No state machine, no history, no outbox, no retries, no timers. It keeps
 * what any honest app keeps, and what docs/design.md asks of every implementation of the flow: a signed
 * state cookie compared in constant time, a single-use state, refresh tokens encrypted at rest,
 * the instance taken from Wix (never from the browser's query), the refresh token Wix answers
 * with kept. Benchmark only: never shipped.
 */

const env = process.env
const sql = postgres(env.DATABASE_URL!, { max: 10, onnotice: () => {}, connection: { application_name: 'bench-reference' } })
const cipher = createTokenCipher(parseCipherKeys(env.TOKEN_ENCRYPTION_KEY!))
const { WIX_APP_ID: appId, WIX_APP_SECRET: appSecret, WIX_WWW_URL: wwwUrl, WIX_API_URL: apiUrl, PUBLIC_URL: publicUrl } = env as Record<string, string>
const adminToken = createHash('sha256').update(env.ADMIN_TOKEN!).digest()

await sql`
  create table if not exists ref_installations (
    id uuid primary key default gen_random_uuid(),
    state_hash text not null unique,
    status text not null,
    instance_id text,
    refresh_token text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
  )`
await sql`create index if not exists ref_installations_instance_idx on ref_installations (instance_id, created_at desc)`

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')
const same = (a: string, b: string) => timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())

async function wix(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await request(`${apiUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  const json = (await res.body.json()) as Record<string, string>
  if (res.statusCode >= 300) throw Object.assign(new Error(`Wix answered ${res.statusCode}`), { statusCode: 502 })
  return json
}

const app = Fastify({ logger: { level: env.LOG_LEVEL ?? 'warn' } })
await app.register(cookie, { secret: env.COOKIE_SECRET! })

app.get('/healthz', async () => {
  await sql`select 1`
  return { status: 'ok' }
})

app.get('/wix/app-url', async (req, reply) => {
  const { token } = req.query as { token?: string }
  if (!token) return reply.code(400).send({ message: 'token is required' })
  const state = randomBytes(32).toString('base64url')
  await sql`insert into ref_installations (state_hash, status) values (${sha256(state)}, 'authorizing')`
  reply.setCookie('state', state, { path: '/wix', httpOnly: true, signed: true, sameSite: 'lax', maxAge: 1800 })
  const url = new URL(`${wwwUrl}/installer/install`)
  url.search = new URLSearchParams({ token, appId, redirectUrl: `${publicUrl}/wix/redirect`, state }).toString()
  return reply.redirect(url.toString(), 302)
})

app.get('/wix/redirect', async (req, reply) => {
  const { code, state, instanceId } = req.query as Record<string, string | undefined>
  if (!code || !state || !instanceId) return reply.code(400).send({ message: 'code, state and instanceId are required' })
  const raw = req.cookies.state
  const cookieState = raw === undefined ? undefined : req.unsignCookie(raw)
  if (!cookieState?.valid || !cookieState.value || !same(state, cookieState.value)) return reply.code(403).send({ message: 'state mismatch' })
  // Single use: only the request that moves the row out of 'authorizing' may spend the code.
  const [row] = await sql<{ id: string }[]>`
    update ref_installations set status = 'exchanging', updated_at = now()
    where state_hash = ${sha256(state)} and status = 'authorizing' returning id`
  if (!row) return reply.code(409).send({ message: 'state already used or unknown' })
  const tokens = await wix('/oauth/access', { grant_type: 'authorization_code', client_id: appId, client_secret: appSecret, code })
  // The browser's instanceId is a claim anyone can edit (docs/design.md): Wix says whose the tokens are.
  const owner = await request(`${apiUrl}/apps/v1/instance`, { method: 'GET', headers: { authorization: tokens.access_token! } })
  const { instance } = (await owner.body.json()) as { instance?: { instanceId?: string } }
  if (owner.statusCode >= 300 || !instance?.instanceId) return reply.code(502).send({ message: 'Wix did not say whose the tokens are' })
  const verified = instance.instanceId.toLowerCase()
  await sql`
    update ref_installations set status = 'installed', instance_id = ${verified},
      refresh_token = ${cipher.encrypt(tokens.refresh_token!)}, updated_at = now()
    where id = ${row.id}`
  reply.clearCookie('state', { path: '/wix' })
  return reply.redirect(`${publicUrl}/?instanceId=${encodeURIComponent(verified)}`, 302)
})

app.post('/api/installations/:id/finish', async (req, reply) => {
  const auth = req.headers.authorization ?? ''
  if (!auth.startsWith('Bearer ') || !timingSafeEqual(createHash('sha256').update(auth.slice(7)).digest(), adminToken)) {
    return reply.code(401).send({ message: 'unauthorized' })
  }
  const { id } = req.params as { id: string }
  const [row] = await sql<{ id: string; status: string; refresh_token: string | null; instance_id: string; created_at: Date; updated_at: Date }[]>`
    select id, status, refresh_token, instance_id, created_at, updated_at from ref_installations
    where instance_id = ${id} order by created_at desc limit 1`
  if (!row) return reply.code(404).send({ message: 'not found' })
  if (row.status !== 'finished') {
    if (row.status !== 'installed' || !row.refresh_token) return reply.code(409).send({ message: `installation is ${row.status}` })
    const refreshed = await wix('/oauth/access', { grant_type: 'refresh_token', client_id: appId, client_secret: appSecret, refresh_token: cipher.decrypt(row.refresh_token) })
    await wix('/apps/v1/bi-event', { eventName: 'APP_FINISHED_CONFIGURATION' }, { authorization: refreshed.access_token! })
    // Whatever refresh token comes back is the one to keep (docs/design.md), in the write that finishes.
    await sql`update ref_installations set status = 'finished', refresh_token = ${cipher.encrypt(refreshed.refresh_token!)}, updated_at = now()
              where id = ${row.id}`
  }
  return { id: row.id, instanceId: row.instance_id, state: 'Finished', createdAt: row.created_at, updatedAt: new Date() }
})

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void app.close().then(() => sql.end({ timeout: 5 })).then(() => process.exit(0)))
}
await app.listen({ host: '127.0.0.1', port: Number(env.PORT ?? 3100) })
