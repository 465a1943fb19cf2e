import { generateKeyPairSync } from 'node:crypto'
import { SignJWT } from 'jose'
import t from 'tap'
import { request } from 'undici'
import { freshDatabase } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { waitUntil } from './support/process.ts'
import { startService, type Service } from './support/service.ts'

/**
 * `POST /wix/webhooks` over real HTTP: the fake Wix signs with its own key pair and posts to the
 * service, as Wix does; the service verifies with WIX_PUBLIC_KEY. Forged, malformed and repeated
 * deliveries are tried as an attacker (or a retrying Wix) would.
 */

const db = await freshDatabase()
t.teardown(db.drop)

const post = async (service: Service, body: string, contentType = 'text/plain') => {
  const res = await request(`${service.url}/wix/webhooks`, { method: 'POST', headers: { 'content-type': contentType }, body })
  const text = await res.body.text()
  return { status: res.statusCode, json: JSON.parse(text || 'null') as Record<string, any> }
}

/** Rows an attacker must not be able to create. */
const counts = async (service: Service) => {
  const [row] = await service.app.sql<{ deliveries: number; workflows: number; tokens: number }[]>`
    select (select count(*)::int from wix_install.webhook_deliveries) as deliveries, (select count(*)::int from wix_engine.workflows) as workflows,
           (select count(*)::int from wix_install.instance_tokens) as tokens`
  return row!
}

/** A legacy install through the browser flow, finished: tokens stored, bi-event sent. */
async function installByRedirect(service: Service, instanceId?: string) {
  const owner = siteOwner(service)
  await owner.openAppUrl(`token-${Math.random()}`)
  const id = await owner.installationId()
  await owner.callback(await owner.approve(instanceId))
  await service.app.engine.waitFor(id, (w) => w.statePath === 'SetupIncomplete.waiting', 5_000)
  await service.api('POST', `/api/installations/${id}/finish`)
  return (await service.api('GET', `/api/installations/${id}`)).json
}

const installationsOf = (service: Service, instanceId: string) =>
  service.app.sql<{ id: string; state: string; snapshot: { context: Record<string, unknown> } }[]>`
    select id, state, snapshot from wix_engine.workflows where key = ${instanceId} order by created_at`

t.test('AppRemoved: a Finished installation is Uninstalled, its tokens erased, and the token route says so without Wix', async (t) => {
  const service = await startService(t, { db })
  const installed = await installByRedirect(service)
  t.equal(installed.state, 'Finished', 'the site has the app, Finished')

  // The owner removes the app: Wix stops granting the site's tokens, then posts AppRemoved.
  service.wix.removeApp(installed.instanceId)
  const body = await service.wix.signWebhook('AppRemoved', installed.instanceId, {})
  const answer = await post(service, body)
  t.equal(answer.status, 200, 'the signed delivery is answered 200')
  t.same(answer.json, { received: true, duplicate: false }, 'as a new delivery')

  await waitUntil('the installation is Uninstalled', async () =>
    (await service.api('GET', `/api/installations/${installed.id}`)).json.state === 'Uninstalled', 5_000)
  // The installation ends first, then the tokens go, then the delivery is marked: wait for the last.
  await waitUntil('the delivery is processed', async () =>
    (await service.app.sql`select 1 from wix_install.webhook_deliveries where processed_at is not null`).length === 1, 5_000)
  const after = (await service.api('GET', `/api/installations/${installed.id}`)).json
  t.same(after.failure, { reason: 'uninstalled', detail: 'The app was uninstalled from the site.' }, 'with reason uninstalled')
  t.equal(after.history.at(-1).source, 'webhook:AppRemoved', 'and the webhook named in its history')
  const tokens = await service.app.sql`select 1 from wix_install.instance_tokens where instance_id = ${installed.instanceId}`
  t.equal(tokens.length, 0, 'its tokens are erased: the row is gone')

  const calls = service.wix.requests.length
  const token = await service.api('POST', `/api/installations/${installed.id}/access-token`)
  t.equal(token.status, 409, 'the access-token route answers 409')
  t.equal(token.json.code, 'UNINSTALLED', 'named UNINSTALLED')
  t.notOk(token.json.accessToken, 'with no token')
  t.equal(service.wix.requests.length, calls, 'and Wix was not called')

  const [delivery] = await service.app.sql<{ outcome: string; processed_at: Date | null }[]>`select outcome, processed_at from wix_install.webhook_deliveries`
  t.ok(delivery!.processed_at, 'the delivery is marked processed')
  t.match(delivery!.outcome, /^uninstalled .*; tokens erased$/, 'with what it did')

  const version = after.version
  const repeat = await post(service, body)
  t.same([repeat.status, repeat.json.duplicate], [200, true], 'a repeat of the delivery is answered 200, as a duplicate')
  await service.app.webhooks.processor.idle()
  t.equal((await service.api('GET', `/api/installations/${installed.id}`)).json.version, version, 'and changes nothing')

  const fresh = await post(service, await service.wix.signWebhook('AppRemoved', installed.instanceId, {}))
  t.same([fresh.status, fresh.json.duplicate], [200, false], 'a second, separately signed AppRemoved is a new delivery')
  await service.app.webhooks.processor.idle()
  t.equal((await service.api('GET', `/api/installations/${installed.id}`)).json.version, version, 'that changes nothing either')
})

t.test('AppInstalled (a new app: no redirect flow) → client credentials → Tokened → SetupIncomplete → Finished', async (t) => {
  const service = await startService(t, { db })
  const origin = '1380b703-ce81-ff05-f115-39571d94dfcd'
  const { instanceId, status } = await service.wix.installApp({ originInstanceId: origin })
  t.equal(status, 200, 'Wix delivers AppInstalled and gets a 200')

  await waitUntil('the installation waits for setup', async () => (await installationsOf(service, instanceId))[0]?.state === 'SetupIncomplete', 5_000)
  const [row] = await installationsOf(service, instanceId)
  const one = (await service.api('GET', `/api/installations/${instanceId}`)).json
  t.equal(one.id, row!.id, 'the installation is found by its instance id')
  t.equal(one.origin, 'webhook', 'started by the webhook')
  t.equal(one.originInstanceId, origin, 'recording the site it was cloned from')
  t.same(one.history.map((h: { to: string }) => h.to), ['AppUrlHit.confirming', 'Tokened', 'SetupIncomplete.waiting'],
    'it confirmed the install, reached Tokened, then SetupIncomplete')
  t.same(service.wix.requests.map((r) => `${r.endpoint} ${(r.body as { grant_type?: string }).grant_type ?? ''}`.trim()),
    ['oauth2/token client_credentials'], 'proven by one client-credentials token and nothing else')
  t.same(service.wix.requests[0]!.body, { grant_type: 'client_credentials', client_id: service.wix.appId, client_secret: service.wix.appSecret, instance_id: instanceId },
    'asked for as docs/design.md says')

  const token = await service.api('POST', `/api/installations/${instanceId}/access-token`)
  t.equal(token.status, 200, 'the access-token route answers')
  t.ok(service.wix.isValidAccessToken(token.json.accessToken), 'with a client-credentials token Wix accepts')
  t.equal(service.wix.instanceOfToken(token.json.accessToken), instanceId, 'for this instance')
  t.equal(service.wix.requests.length, 1, 'cached: the token minted at confirmation is served, no new call')

  const finish = await service.api('POST', `/api/installations/${instanceId}/finish`)
  t.same([finish.status, finish.json.state], [200, 'Finished'], 'finish reaches Finished')
  const bi = service.wix.requests.filter((r) => r.endpoint === 'bi-event')
  t.equal(bi.length, 1, 'with one bi-event')
  t.equal(bi[0]!.status, 200, 'that Wix accepted')

  const again = await post(service, await service.wix.signWebhook('AppInstalled', instanceId, { appId: service.wix.appId, originInstanceId: '' }))
  t.same([again.status, again.json.duplicate], [200, false], 'a later AppInstalled for the instance is recorded')
  await service.app.webhooks.processor.idle()
  t.equal((await installationsOf(service, instanceId)).length, 1, 'and leaves one installation')
  const [recorded] = await service.app.sql<{ outcome: string }[]>`select outcome from wix_install.webhook_deliveries order by received_at desc limit 1`
  t.match(recorded!.outcome, /^ignored: installation .* is live \(Finished\)$/, 'saying why it changed nothing')
})

t.test('the same AppInstalled delivered 20 times at once, and 10 differently signed ones: one installation', async (t) => {
  const service = await startService(t, { db })
  const instanceId = '6f1c2a3b-4d5e-0f00-9a8b-7c6d5e4f3a2b'
  const body = await service.wix.signWebhook('AppInstalled', instanceId, { appId: service.wix.appId, originInstanceId: '' })
  const answers = await Promise.all(Array.from({ length: 20 }, () => post(service, body)))
  t.ok(answers.every((a) => a.status === 200), 'every copy is answered 200')
  t.equal(answers.filter((a) => a.json.duplicate === false).length, 1, 'exactly one as new')
  const others = await Promise.all(Array.from({ length: 10 }, (_, i) =>
    service.wix.signWebhook('AppInstalled', instanceId, { appId: service.wix.appId, originInstanceId: '', n: i })))
  await Promise.all(others.map((b) => post(service, b)))
  await service.app.webhooks.processor.idle()
  await waitUntil('the installation is set up', async () => (await installationsOf(service, instanceId))[0]?.state === 'SetupIncomplete', 5_000)
  t.equal((await installationsOf(service, instanceId)).length, 1, 'one installation for the instance')
  t.equal(service.wix.requests.filter((r) => r.endpoint === 'oauth2/token').length, 1, 'confirmed by one token call')
  const [d] = await service.app.sql<{ n: number; pending: number }[]>`
    select count(*)::int as n, count(*) filter (where processed_at is null)::int as pending from wix_install.webhook_deliveries where instance_id = ${instanceId}`
  t.same(d, { n: 11, pending: 0 }, 'eleven deliveries recorded, each processed once')
})

t.test('after an uninstall, a reinstall of the same instance starts a new installation (either flow)', async (t) => {
  const service = await startService(t, { db })
  const { instanceId } = await service.wix.installApp()
  await waitUntil('installed', async () => (await installationsOf(service, instanceId))[0]?.state === 'SetupIncomplete', 5_000)
  await service.wix.uninstallApp(instanceId)
  await waitUntil('uninstalled', async () => (await installationsOf(service, instanceId))[0]?.state === 'Uninstalled', 5_000)
  t.equal(service.wix.webhooksSent.at(-1)?.status, 200, 'AppRemoved was delivered')

  await service.wix.installApp({ instanceId })
  await waitUntil('installed again', async () => (await installationsOf(service, instanceId)).length === 2, 5_000)
  await waitUntil('set up again', async () => (await installationsOf(service, instanceId))[1]?.state === 'SetupIncomplete', 5_000)
  const [first, second] = await installationsOf(service, instanceId)
  t.not(first!.id, second!.id, 'AppInstalled after the uninstall started a new installation')
  t.equal(first!.state, 'Uninstalled', 'the old one stays Uninstalled')

  await service.wix.uninstallApp(instanceId)
  await waitUntil('uninstalled again', async () => (await installationsOf(service, instanceId))[1]?.state === 'Uninstalled', 5_000)
  const legacy = await installByRedirect(service, instanceId)
  t.equal(legacy.state, 'Finished', 'the redirect flow installs the same instance anew')
  t.equal((await installationsOf(service, instanceId)).length, 3, 'as a third installation')
  t.equal((await service.api('GET', `/api/installations/${instanceId}`)).json.id, legacy.id, 'which the instance id now finds')
  const token = await service.api('POST', `/api/installations/${instanceId}/access-token`)
  t.ok(service.wix.isValidAccessToken(token.json.accessToken), 'and its access token works')
})

t.test('other event types are recorded and answered 200; unknown is not an error', async (t) => {
  const service = await startService(t, { db })
  const before = await counts(service)
  const res = await post(service, await service.wix.signWebhook('PaidPlanPurchased', '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0', { vendorProductId: 'gold' }))
  t.same([res.status, res.json.received], [200, true], 'answered 200')
  await service.app.webhooks.processor.idle()
  const [row] = await service.app.sql<{ event_type: string; data: unknown; outcome: string }[]>`
    select event_type, data, outcome from wix_install.webhook_deliveries where event_type = 'PaidPlanPurchased'`
  t.same(row, { event_type: 'PaidPlanPurchased', data: { vendorProductId: 'gold' }, outcome: 'recorded' }, 'recorded with its data')
  t.equal((await counts(service)).workflows, before.workflows, 'and no installation is touched')
})

t.test('forged and malformed deliveries: 4xx, and nothing is written', async (t) => {
  const service = await startService(t, { db })
  const instanceId = '2c9d4e5f-6a7b-8c9d-0e1f-2a3b4c5d6e7f'
  const good = await service.wix.signWebhook('AppInstalled', instanceId, { appId: service.wix.appId })
  const [header, payload, signature] = good.split('.') as [string, string, string]
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const event = (e: Record<string, unknown>) => ({ data: JSON.stringify(e) })
  const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
  const sign = (claims: Record<string, unknown>, key = otherKey, alg = 'RS256') =>
    new SignJWT(claims).setProtectedHeader({ alg }).sign(key as never)
  const removed = event({ eventType: 'AppRemoved', instanceId, data: '{}' })

  const cases: [string, string | Promise<string>, number, string][] = [
    ['signed with another key', sign(event({ eventType: 'AppInstalled', instanceId, data: '{}' })), 401, 'WEBHOOK_SIGNATURE_INVALID'],
    ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64(removed)}.`, 401, 'WEBHOOK_SIGNATURE_INVALID'],
    ['HS256 keyed with the public key', new SignJWT(removed).setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(service.wix.publicKeyPem)), 401, 'WEBHOOK_SIGNATURE_INVALID'],
    ['another payload under a valid signature', `${header}.${b64(removed)}.${signature}`, 401, 'WEBHOOK_SIGNATURE_INVALID'],
    ['a tampered signature', `${header}.${payload}.${signature.slice(0, -4)}AAAA`, 401, 'WEBHOOK_SIGNATURE_INVALID'],
    ['truncated in its signature', good.slice(0, -40), 401, 'WEBHOOK_SIGNATURE_INVALID'],
    ['truncated before its signature', `${header}.${payload}`, 400, 'WEBHOOK_MALFORMED'],
    ['truncated in its payload', `${header}.${payload.slice(0, 20)}`, 400, 'WEBHOOK_MALFORMED'],
    ['not a JWT', 'hello wix', 400, 'WEBHOOK_MALFORMED'],
    ['JSON instead of a JWT', JSON.stringify({ eventType: 'AppRemoved', instanceId }), 400, 'WEBHOOK_MALFORMED'],
    ['empty', '', 400, 'WEBHOOK_MALFORMED'],
    ['oversized', `${good}.${'A'.repeat(40 * 1024)}`, 413, 'PAYLOAD_TOO_LARGE'],
    ['signed, but no instanceId', service.wix.signWebhook('AppRemoved', undefined as never), 400, 'WEBHOOK_MALFORMED'],
    ['signed, but an instanceId that is no GUID', service.wix.signWebhook('AppRemoved', "x' or 1=1 --"), 400, 'WEBHOOK_MALFORMED'],
    ['signed, but no eventType', service.wix.signWebhook('', instanceId), 400, 'WEBHOOK_MALFORMED'],
    ['signed four days ago (a replay)', service.wix.signWebhook('AppRemoved', instanceId, {}, { issuedAtMs: Date.now() - 4 * 86_400_000 }), 401, 'WEBHOOK_TOO_OLD'],
  ]
  const before = await counts(service)
  for (const [label, body, status, code] of cases) {
    const res = await post(service, await body)
    t.equal(res.status, status, `${label}: ${status}`)
    t.equal(res.json?.code, code, `${label}: ${code}`)
  }
  const malformedData = await post(service, await new SignJWT({ data: 'not json' }).setProtectedHeader({ alg: 'RS256' }).sign(otherKey))
  t.equal(malformedData.status, 401, 'a well-formed JWT from another key is refused before its payload is read')
  t.same(await counts(service), before, 'no delivery, installation or token was written')

  const genuine = await post(service, good, 'application/json')
  t.same([genuine.status, genuine.json.received], [200, true], 'while the genuine delivery is accepted, whatever content type it claims')
})

t.test('a delivery recorded by a process that died before acting is acted on by the sweep', async (t) => {
  const service = await startService(t, { db })
  const { instanceId } = { instanceId: '7d8e9f00-1a2b-3c4d-5e6f-708192a3b4c5' }
  const body = await service.wix.signWebhook('AppInstalled', instanceId, { appId: service.wix.appId })
  const { deliveryId } = await service.app.webhooks.verify!(body)
  // As a process that committed the delivery and was killed before acting on it left it.
  await service.app.sql`
    insert into wix_install.webhook_deliveries (id, event_type, instance_id, data, body, received_at)
    values (${deliveryId}, 'AppInstalled', ${instanceId}, ${service.app.sql.json({ appId: service.wix.appId })}, ${body}, now() - interval '1 minute')`
  await service.app.webhooks.processor.sweep()
  await service.app.webhooks.processor.idle()
  const [row] = await service.app.sql<{ processed_at: Date | null; outcome: string }[]>`select processed_at, outcome from wix_install.webhook_deliveries where instance_id = ${instanceId}`
  t.ok(row!.processed_at, 'the stranded delivery is processed')
  t.match(row!.outcome, /^started installation/, 'and started the installation')
  await waitUntil('set up', async () => (await installationsOf(service, instanceId))[0]?.state === 'SetupIncomplete', 5_000)
  t.pass('which goes on to SetupIncomplete')
})

t.test('without WIX_PUBLIC_KEY the route answers 503 and writes nothing', async (t) => {
  const service = await startService(t, { db, env: { WIX_PUBLIC_KEY: '' } })
  const before = await counts(service)
  const res = await post(service, await service.wix.signWebhook('AppRemoved', '7d8e9f00-1a2b-3c4d-5e6f-708192a3b4c5'))
  t.equal(res.status, 503, '503')
  t.equal(res.json.code, 'WEBHOOKS_NOT_CONFIGURED', 'named WEBHOOKS_NOT_CONFIGURED')
  t.same(await counts(service), before, 'and nothing is written')
  t.ok(service.logs.some((l) => l.includes('WIX_PUBLIC_KEY is not set')), 'the start warned about it')
})

t.test('a late retry of an AppRemoved signed before a reinstall leaves the new installation alone', async (t) => {
  const service = await startService(t, { db })
  const { instanceId } = await service.wix.installApp()
  await waitUntil('installed', async () => (await installationsOf(service, instanceId))[0]?.state === 'SetupIncomplete', 5_000)
  const old = await service.wix.signWebhook('AppRemoved', instanceId, {}, { issuedAtMs: Date.now() - 10 * 60_000 })
  t.equal((await post(service, old)).status, 200, 'the stale delivery is answered 200')
  await service.app.webhooks.processor.idle()
  t.equal((await installationsOf(service, instanceId))[0]?.state, 'SetupIncomplete', 'and the installation begun after it is untouched')
  const [row] = await service.app.sql<{ outcome: string }[]>`select outcome from wix_install.webhook_deliveries where event_type = 'AppRemoved' and instance_id = ${instanceId}`
  t.match(row!.outcome, /^ignored: signed before installation/, 'saying why')
})

t.test('a quick reinstall\'s AppRemoved and AppInstalled, delivered at once, are acted on in order', async (t) => {
  const service = await startService(t, { db })
  const { instanceId } = await service.wix.installApp()
  await waitUntil('installed', async () => (await installationsOf(service, instanceId))[0]?.state === 'SetupIncomplete', 5_000)
  const at = Date.now()
  const removed = await service.wix.signWebhook('AppRemoved', instanceId, {}, { issuedAtMs: at })
  const installed = await service.wix.signWebhook('AppInstalled', instanceId, { appId: service.wix.appId }, { issuedAtMs: at + 2_000 })
  // The later event first, then both again at once: whatever the arrival, Wix's order holds.
  // The owner removed the app, then installed it again, before either is acted on.
  service.wix.removeApp(instanceId)
  await service.wix.installApp({ instanceId })
  await post(service, installed)
  await Promise.all([post(service, removed), post(service, installed)])
  await service.app.webhooks.processor.idle()
  await waitUntil('every delivery acted on', async () => (await service.app.sql`
    select 1 from wix_install.webhook_deliveries where instance_id = ${instanceId} and processed_at is null`).length === 0, 10_000)
  const [removal] = await service.app.sql<{ outcome: string }[]>`
    select outcome from wix_install.webhook_deliveries where instance_id = ${instanceId} and event_type = 'AppRemoved'`
  t.match(removal!.outcome, /^ignored: stale/, 'the AppRemoved, checked with Wix, is stale: the app is back on the site')
  const rows = await installationsOf(service, instanceId)
  t.same(rows.map((r) => r.state), ['SetupIncomplete'], 'so the instance keeps its one live installation')
  const token = await service.api('POST', `/api/installations/${instanceId}/access-token`)
  t.equal(service.wix.instanceOfToken(token.json.accessToken), instanceId, 'whose access token works')
})

t.test('a webhook install\'s client-credentials tokens give way to a legacy exchange\'s refresh token, never the reverse', async (t) => {
  const service = await startService(t, { db })
  const { instanceId } = await service.wix.installApp()
  await waitUntil('installed', async () => (await installationsOf(service, instanceId))[0]?.state === 'SetupIncomplete', 5_000)
  const legacy = await installByRedirect(service, instanceId)
  const [row] = await service.app.sql<{ refresh_token: string | null; workflow_id: string }[]>`
    select refresh_token, workflow_id from wix_install.instance_tokens where instance_id = ${instanceId}`
  t.equal(row!.workflow_id, legacy.id, 'the OAuth exchange stores its tokens for the instance')
  t.ok(row!.refresh_token, 'with its refresh token')
})

t.test('two instances of the service receiving the same AppInstalled at once start one installation', async (t) => {
  const a = await startService(t, { db })
  const b = await startService(t, { db, fake: a.fake })
  const instanceId = '5a6b7c8d-9e0f-1a2b-3c4d-5e6f7a8b9c0d'
  const same = await a.wix.signWebhook('AppInstalled', instanceId, { appId: a.wix.appId })
  const other = await a.wix.signWebhook('AppInstalled', instanceId, { appId: a.wix.appId, n: 2 })
  const answers = await Promise.all([a, b, a, b, a, b].flatMap((s) => [post(s, same), post(s, other)]))
  t.ok(answers.every((r) => r.status === 200), 'every copy, at either instance, is answered 200')
  await Promise.all([a.app.webhooks.processor.idle(), b.app.webhooks.processor.idle()])
  await waitUntil('set up', async () => (await installationsOf(a, instanceId))[0]?.state === 'SetupIncomplete', 10_000)
  await waitUntil('both deliveries processed', async () => {
    const [row] = await a.app.sql<{ pending: number }[]>`
      select count(*) filter (where processed_at is null)::int as pending from wix_install.webhook_deliveries where instance_id = ${instanceId}`
    return row!.pending === 0
  }, 15_000)
  t.equal((await installationsOf(a, instanceId)).length, 1, 'one installation for the instance')
  t.equal(a.wix.requests.filter((r) => r.endpoint === 'oauth2/token').length, 1, 'confirmed by one token call')
})
