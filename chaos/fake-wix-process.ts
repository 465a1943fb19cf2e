// The fake Wix in a process of its own, misbehaving at random (seeded): 5xx, 429 with
// Retry-After, slow replies, hangs past the client's timeout, 400 on some code exchanges.
// It counts every code exchange and remembers every secret it handed out, for the checks.
import Fastify from 'fastify'
import { createFakeWix, fakeWixPlugin } from '../src/sandbox/fake-wix.ts'
import { prng } from './prng.ts'

const port = Number(process.env.PORT)
const random = prng(Number(process.env.SEED ?? 1))
const wix = createFakeWix({ appId: process.env.APP_ID!, appSecret: process.env.APP_SECRET! })
const exchanges = new Map<string, number[]>()
const secrets = new Set<string>()

const app = Fastify({ logger: false })
app.addHook('onRequest', async (request) => {
  const endpoint = request.url.endsWith('/oauth/access') ? 'oauth/access' : request.url.endsWith('/bi-event') ? 'bi-event' : undefined
  if (!endpoint) return
  const roll = random()
  if (roll < 0.1) wix.failNext({ endpoint, status: random() < 0.5 ? 500 : 503 })
  else if (roll < 0.15) wix.failNext({ endpoint, status: 429, retryAfterSeconds: 1 })
  else if (roll < 0.2) wix.failNext({ endpoint, delayMs: 500 + Math.floor(random() * 1500) })
  else if (roll < 0.22) wix.failNext({ endpoint, hang: true })
})
app.addHook('preHandler', async (request) => {
  const body = request.body as { grant_type?: string; code?: string } | undefined
  // A few exchanges are refused outright: the code is bad, as far as Wix is concerned.
  if (body?.grant_type === 'authorization_code' && body.code && !exchanges.has(body.code) && random() < 0.03) {
    wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', status: 400 })
  }
})
app.addHook('onSend', async (request, reply, payload) => {
  const body = request.body as { grant_type?: string; code?: string } | undefined
  if (body?.code) {
    secrets.add(body.code)
    if (body.grant_type === 'authorization_code') exchanges.set(body.code, [...(exchanges.get(body.code) ?? []), reply.statusCode])
  }
  if (typeof payload === 'string' && payload.includes('_token')) {
    const tokens = JSON.parse(payload) as { access_token?: string; refresh_token?: string }
    for (const t of [tokens.access_token, tokens.refresh_token]) if (t) secrets.add(t)
  }
  return payload
})
app.get('/_chaos/report', async () => ({ exchanges: Object.fromEntries(exchanges), secrets: [...secrets] }))
await app.register(fakeWixPlugin, { appId: wix.appId, appSecret: wix.appSecret, wix })
await app.listen({ port, host: '127.0.0.1' })
console.log(`fake wix ready on ${port}`)
process.on('SIGTERM', () => app.close().then(() => process.exit(0)))
