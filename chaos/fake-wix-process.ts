// The fake Wix in a process of its own, misbehaving at random (seeded): 5xx, 429 with
// Retry-After, slow replies, hangs past the client's timeout, 400 on some code exchanges.
// It counts every code exchange per code, every bi-event per instance, and remembers every
// secret it handed out or was sent, for the checks (GET /_chaos/report). POST /_chaos/calm ends
// the misbehaving: the chaos is over, and what it left behind must now settle.
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { createFakeWix, fakeWixPlugin } from '../src/sandbox/fake-wix.ts'
import { prng } from './prng.ts'

export interface ExchangeRecord {
  instanceId: string | null
  /** Every answer to an exchange of this code, in order. */
  statuses: number[]
  /** 200s that went to a caller that had already hung up (it died or timed out). */
  answeredToNobody: number
}

export interface ChaosReport {
  exchanges: Record<string, ExchangeRecord>
  /** 200 answers to APP_FINISHED_CONFIGURATION, per instance. */
  biEvents: Record<string, number>
  injected: Record<string, number>
  secrets: string[]
}

const port = Number(process.env.PORT)
const random = prng(Number(process.env.SEED ?? 1))
const wix = createFakeWix({ appId: process.env.APP_ID!, appSecret: process.env.APP_SECRET! })
const exchanges = new Map<string, ExchangeRecord>()
const biEvents = new Map<string, number>()
const injected: Record<string, number> = {}
const secrets = new Set<string>([wix.appSecret])
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Set by POST /_chaos/calm: from then on every call is answered as Wix would on a good day. */
let calm = false

type Body = { grant_type?: string; code?: string; refresh_token?: string } | undefined
const endpointOf = (request: FastifyRequest) =>
  request.url.endsWith('/oauth/access') ? 'oauth/access' : request.url.endsWith('/bi-event') ? 'bi-event' : undefined

const fail = (reply: FastifyReply, kind: string, status: number, message = `Injected failure ${status}`) => {
  injected[kind] = (injected[kind] ?? 0) + 1
  return reply.code(status).send({ message, details: { injected: true } })
}

const app = Fastify({ logger: false })
// Decided per call, before the fake's own handler runs (so a refused or hung exchange never
// spends the code, as with Wix): ~10% 5xx, ~5% 429, ~5% slow, ~2% hang, ~3% of exchanges 400.
app.addHook('preHandler', async (request, reply) => {
  const endpoint = endpointOf(request)
  if (!endpoint || calm) return
  const body = request.body as Body
  const roll = random()
  if (roll < 0.1) return fail(reply, '5xx', random() < 0.5 ? 500 : 503)
  if (roll < 0.15) {
    reply.header('retry-after', String(1 + Math.floor(random() * 2)))
    return fail(reply, '429', 429)
  }
  if (roll < 0.2) {
    injected.slow = (injected.slow ?? 0) + 1
    await sleep(1_000 + random() * 2_000)
    return
  }
  if (roll < 0.22) {
    injected.hang = (injected.hang ?? 0) + 1
    // Past the client's 10 s timeout; released when this process closes.
    await wix.hold(30_000)
    return fail(reply, 'hang', 504, 'Fake Wix released a hanging request')
  }
  // A few codes are refused outright, on their first try: bad, as far as Wix is concerned.
  if (body?.grant_type === 'authorization_code' && body.code && !exchanges.has(body.code) && roll < 0.25) {
    return fail(reply, '400', 400, 'Injected failure: the authorization code was refused')
  }
})
app.addHook('onSend', async (request, reply, payload) => {
  const endpoint = endpointOf(request)
  const body = request.body as Body
  if (body?.code) secrets.add(body.code)
  if (body?.refresh_token) secrets.add(body.refresh_token)
  if (endpoint === 'oauth/access' && body?.grant_type === 'authorization_code' && body.code) {
    const record = exchanges.get(body.code) ?? { instanceId: wix.issuedCodes.get(body.code)?.instanceId ?? null, statuses: [], answeredToNobody: 0 }
    record.statuses.push(reply.statusCode)
    if (reply.statusCode === 200 && request.raw.socket?.destroyed) record.answeredToNobody++
    exchanges.set(body.code, record)
  }
  if (endpoint === 'bi-event' && reply.statusCode === 200) {
    // Access tokens read OAUTH2.A.<instanceId>.<expiry>.<nonce>.<mac>.
    const instanceId = String(request.headers.authorization ?? '').split('.')[2] ?? '?'
    biEvents.set(instanceId, (biEvents.get(instanceId) ?? 0) + 1)
  }
  if (typeof payload === 'string' && payload.includes('_token')) {
    const tokens = JSON.parse(payload) as { access_token?: string; refresh_token?: string }
    for (const t of [tokens.access_token, tokens.refresh_token]) if (t) secrets.add(t)
  }
  return payload
})
app.post('/_chaos/calm', async () => {
  calm = true
  return { calm }
})
app.get('/_chaos/report', async (): Promise<ChaosReport> => ({
  exchanges: Object.fromEntries(exchanges), biEvents: Object.fromEntries(biEvents), injected, secrets: [...secrets],
}))
await app.register(fakeWixPlugin, { appId: wix.appId, appSecret: wix.appSecret, wix })
await app.listen({ port, host: '127.0.0.1' })
console.log(`fake wix ready on ${port}`)
const close = () => app.close().then(() => process.exit(0))
process.on('SIGTERM', close)
process.on('SIGINT', close)
