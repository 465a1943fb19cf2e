import { generateKeyPairSync } from 'node:crypto'
import { SignJWT } from 'jose'
import t from 'tap'
import { request } from 'undici'
import { freshDatabase } from './support/database.ts'
import { waitUntil } from './support/process.ts'
import { startService, type Service } from './support/service.ts'

/**
 * What makes a delivery one delivery: what Wix signed (not how the body spells it), signed at a
 * plausible time (an `iat` is required, neither years ahead nor days behind), unexpired when it
 * arrives, and verified again from its stored body before anything acts on it.
 */

const db = await freshDatabase()
t.teardown(db.drop)

const post = async (service: Service, body: string) => {
  const res = await request(`${service.url}/wix/webhooks`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body })
  const text = await res.body.text()
  return { status: res.statusCode, json: JSON.parse(text || 'null') as Record<string, any> }
}

const deliveries = (service: Service, instanceId: string) => service.app.sql<{ id: string; outcome: string | null; processed_at: Date | null }[]>`
  select id, outcome, processed_at from wix_install.webhook_deliveries where instance_id = ${instanceId}`

const stateOf = async (service: Service, instanceId: string) => (await service.api('GET', `/api/installations/${instanceId}`)).json.state

t.test('the 32 spellings of one captured body (its last character, its padding) are one delivery', async (t) => {
  const service = await startService(t, { db })
  const instanceId = '1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809'
  const body = await service.wix.signWebhook('AppInstalled', instanceId, { appId: service.wix.appId, originInstanceId: '' })
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const variants = [...alphabet].flatMap((c) => ['', '==', '='].map((pad) => `${body.slice(0, -1)}${c}${pad}`))
  const answers = await Promise.all(variants.map((v) => post(service, v)))
  const accepted = answers.filter((a) => a.status === 200)
  t.equal(accepted.length, 32, 'the signature verifies in 32 spellings')
  t.equal(accepted.filter((a) => a.json.duplicate === false).length, 1, 'one is the delivery; the other 31 are answered as its repeats')
  await service.app.webhooks.processor.idle()
  t.equal((await deliveries(service, instanceId)).length, 1, 'one delivery is recorded and acted on')
})

t.test('iat is required and bounded both ways; a passed exp is its own answer', async (t) => {
  const service = await startService(t, { db })
  const instanceId = '2b3c4d5e-6f70-8192-a3b4-c5d6e7f8091a'
  const sign = (o: { issuedAtMs?: number | null; expiresAtMs?: number }) => service.wix.signWebhook('AppRemoved', instanceId, {}, o)
  const cases: [string, Promise<string>, number, string][] = [
    ['no iat', sign({ issuedAtMs: null }), 400, 'WEBHOOK_MALFORMED'],
    ['an iat in the year 2100', sign({ issuedAtMs: Date.UTC(2100, 0, 1) }), 401, 'WEBHOOK_ISSUED_IN_FUTURE'],
    ['an iat an hour ahead', sign({ issuedAtMs: Date.now() + 60 * 60_000 }), 401, 'WEBHOOK_ISSUED_IN_FUTURE'],
    ['an exp an hour ago', sign({ issuedAtMs: Date.now() - 2 * 60 * 60_000, expiresAtMs: Date.now() - 60 * 60_000 }), 401, 'WEBHOOK_EXPIRED'],
  ]
  for (const [label, body, status, code] of cases) {
    const res = await post(service, await body)
    t.same([res.status, res.json.code], [status, code], `${label}: ${status} ${code}`)
  }
  t.same(await deliveries(service, instanceId), [], 'none is recorded')
  t.ok(service.logs.some((l) => l.includes('"code":"WEBHOOK_EXPIRED"') && l.includes('webhook refused')), 'the expired one is logged by its code')
  const live = await post(service, await sign({ expiresAtMs: Date.now() + 60 * 60_000 }))
  t.equal(live.status, 200, 'while one whose exp is ahead is accepted')
})

t.test('an event the service does not act on is answered 200 and recorded, whatever its instanceId looks like', async (t) => {
  const service = await startService(t, { db })
  for (const [label, instanceId] of [['no GUID', 'site-42'], ['none', undefined], ['a GUID', '3c4d5e6f-7081-92a3-b4c5-d6e7f8091a2b']] as const) {
    const res = await post(service, await service.wix.signWebhook('wix.stores.v1.product_created', instanceId as string, { id: 'p-1' }))
    t.same([res.status, res.json.received], [200, true], `instanceId ${label}: 200`)
  }
  await service.app.webhooks.processor.idle()
  const rows = await service.app.sql<{ instance_id: string; outcome: string }[]>`
    select instance_id, outcome from wix_install.webhook_deliveries where event_type = 'wix.stores.v1.product_created' order by instance_id`
  t.same(rows, [
    { instance_id: '', outcome: 'recorded' },
    { instance_id: '3c4d5e6f-7081-92a3-b4c5-d6e7f8091a2b', outcome: 'recorded' },
    { instance_id: 'site-42', outcome: 'recorded' },
  ], 'each is recorded')
  const bad = await post(service, await service.wix.signWebhook('AppRemoved', 'site-42'))
  t.same([bad.status, bad.json.code], [400, 'WEBHOOK_MALFORMED'], 'while an AppRemoved with no GUID is still malformed')
})

t.test('the sweep acts only on rows whose stored body verifies: a forged AppRemoved row uninstalls nothing', async (t) => {
  const service = await startService(t, { db })
  const { instanceId } = await service.wix.installApp()
  await waitUntil('installed', async () => (await stateOf(service, instanceId)) === 'SetupIncomplete', 10_000)
  const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
  const forgedBody = await new SignJWT({ data: JSON.stringify({ eventType: 'AppRemoved', instanceId, data: '{}' }) })
    .setProtectedHeader({ alg: 'RS256' }).setIssuedAt().sign(otherKey)
  // Wix's own signature, on another delivery: a genuine body under a row that is not its own.
  const another = await service.wix.signWebhook('AppRemoved', instanceId, {})
  const rows: [string, string | null][] = [['forged-no-body', null], ['forged-other-key', forgedBody], ['forged-borrowed-body', another]]
  for (const [id, body] of rows) {
    await service.app.sql`
      insert into wix_install.webhook_deliveries (id, event_type, instance_id, data, issued_at, body, received_at)
      values (${id}, 'AppRemoved', ${instanceId}, '{}'::jsonb, now(), ${body}, now() - interval '1 minute')`
  }
  await service.app.webhooks.processor.sweep()
  await service.app.webhooks.processor.idle()
  await waitUntil('the forged rows are closed', async () => (await deliveries(service, instanceId)).filter((d) => d.id.startsWith('forged-') && d.processed_at).length === 3, 10_000)
  for (const d of (await deliveries(service, instanceId)).filter((d) => d.id.startsWith('forged-'))) {
    t.equal(d.outcome, 'refused: its stored body is not a delivery Wix signed', `${d.id}: closed unacted`)
  }
  t.equal(await stateOf(service, instanceId), 'SetupIncomplete', 'the installation is not uninstalled')
  const token = await service.api('POST', `/api/installations/${instanceId}/access-token`)
  t.equal(token.status, 200, 'and its tokens still serve')
})
