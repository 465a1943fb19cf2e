import { randomBytes } from 'node:crypto'
import t from 'tap'
import { request } from 'undici'
import { loadConfig } from '../src/config.ts'
import { freshDatabase } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { waitUntil } from './support/process.ts'
import { ADMIN_TOKEN, startService, type Service } from './support/service.ts'

/**
 * What an admin sees of a site, asked by its instance id, whatever happened to it; and how the
 * AppInstalled webhook, the legacy browser flow and AppRemoved act on the installations of one
 * instance. Claims (the Redirect URL's instanceId, which anyone can edit) are shown as claims:
 * never hidden, never trusted.
 */

const db = await freshDatabase()
t.teardown(db.drop)

const VICTIM = '8a3f1c1e-2b4d-4c6e-8f00-0123456789ab'
const ATTACKER = '5e6f7a8b-9c0d-1e2f-3a4b-5c6d7e8f9a0b'
const CLAIM_NOTE = 'claimed by its Redirect URL, not confirmed by Wix'

const post = async (service: Service, body: string) => {
  const res = await request(`${service.url}/wix/webhooks`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body })
  await res.body.dump()
  return res.statusCode
}

const byInstance = async (service: Service, instanceId: string) => service.api('GET', `/api/installations/${instanceId}`)

/** A browser flow up to the URL Wix sends back, for a site Wix knows as `instanceId`. */
async function consent(service: Service, instanceId: string) {
  const owner = siteOwner(service)
  await owner.openAppUrl(`token-${Math.random()}`)
  const back = await owner.approve(instanceId)
  return { owner, back, id: await owner.installationId() }
}

/** A legacy install through the browser flow, to SetupIncomplete. */
async function installByRedirect(service: Service, instanceId: string) {
  const { owner, back, id } = await consent(service, instanceId)
  await owner.callback(back)
  await service.app.engine.waitFor(id, (w) => w.statePath === 'SetupIncomplete.waiting', 10_000)
  return id
}

const liveOf = (service: Service, instanceId: string) => service.app.sql<{ id: string; state: string; origin: string }[]>`
  select id, state, snapshot -> 'context' ->> 'origin' as origin from wix_engine.workflows
  where key = ${instanceId} and snapshot ->> 'status' = 'active' order by created_at`

const tokenHolder = async (service: Service, instanceId: string) => {
  const [row] = await service.app.sql<{ workflow_id: string; refresh: boolean }[]>`
    select workflow_id, refresh_token is not null as refresh from wix_install.instance_tokens where instance_id = ${instanceId}`
  return row
}

const deliveriesDone = (service: Service, instanceId: string) => waitUntil('every delivery for the instance is acted on', async () =>
  (await service.app.sql`select 1 from wix_install.webhook_deliveries where instance_id = ${instanceId} and processed_at is null`).length === 0, 15_000)

t.test('asked by instance id, an admin gets an answer in every state of every path', async (t) => {
  const a = await startService(t, { db, env: { REDIRECT_WAIT_MS: '0', SHUTDOWN_GRACE_MS: '0' } })
  const b = await startService(t, { db, fake: a.fake })

  // Exchanging: Wix holds the code exchange; only the Redirect URL's claim names the site.
  const site = '1380b703-ce81-ff05-f115-39571d94dfcd'
  a.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', hang: true })
  const { owner, back, id } = await consent(a, site)
  await owner.callback(back)
  await waitUntil('the exchange reached Wix', () => a.wix.requests.some((r) => r.endpoint === 'oauth/access'), 10_000)
  t.equal((await byInstance(a, site)).status, 200, 'exchanging: 200, not 404')

  // The process exchanging it dies: until a survivor takes its work over, the claim still answers.
  await a.app.close()
  a.wix.releaseAll()
  // Wix now sends owners back to the survivor.
  b.wix.register({ redirectUrl: `${b.url}/wix/redirect`, webhookUrl: `${b.url}/wix/webhooks` })
  const exchanging = await byInstance(b, site)
  t.equal(exchanging.status, 200, 'its process gone: 200, not 404')
  t.match(exchanging.json, { id, instanceId: null, claimedInstanceId: site, instanceVerified: false, instanceNote: CLAIM_NOTE },
    'the installation that claims the instance, marked as a claim')
  const listed = (await b.api('GET', `/api/installations?instanceId=${site}`)).json
  t.same(listed.items.map((i: { id: string; instanceVerified: boolean }) => [i.id, i.instanceVerified]), [[id, false]], 'listed by the instance too, marked')

  // Taken over by the survivor, however its exchange ends: still the answer for the instance.
  const over = await b.app.engine.waitFor(id, (w) => w.state !== 'CodeReceived', 30_000)
  const taken = await byInstance(b, site)
  t.same([taken.status, taken.json.id, taken.json.state], [200, id, over!.state], `taken over (${over!.state}): the same installation answers`)

  // Uninstalled.
  const removed = '6f1c2a3b-4d5e-0f00-9a8b-7c6d5e4f3a2b'
  const installed = await installByRedirect(b, removed)
  b.wix.removeApp(removed)
  t.equal(await post(b, await b.wix.signWebhook('AppRemoved', removed, {})), 200, 'AppRemoved delivered')
  await deliveriesDone(b, removed)
  t.match((await byInstance(b, removed)).json, { id: installed, state: 'Uninstalled', instanceVerified: true }, 'uninstalled: still found, Uninstalled')

  // Refused: a code Wix will not exchange leaves nothing but the claim.
  const other = 'c0ffee00-1111-2222-3333-444455556666'
  b.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', status: 400, message: 'Invalid authorization code' })
  const refused = await consent(b, other)
  await refused.owner.callback(refused.back)
  await b.app.engine.waitFor(refused.id, (w) => w.state !== 'CodeReceived', 10_000)
  const failed = await byInstance(b, other)
  t.equal(failed.status, 200, 'refused: 200, not 404')
  t.match(failed.json, { id: refused.id, state: 'ExchangeFailed', instanceVerified: false, claimedInstanceId: other, instanceNote: CLAIM_NOTE },
    'the refused installation, marked as a claim')
  t.equal(failed.json.failure.reason, 'exchange_refused', 'its reason says the code was refused')
  t.match(failed.json.failure.detail, `Its Redirect URL claimed instance ${other}; Wix never confirmed that claim`, 'and its detail says, in words, that the instance is only claimed')

  // Webhook-started: seen at once.
  const hooked = '2c9d4e5f-6a7b-8c9d-0e1f-2a3b4c5d6e7f'
  t.equal(await post(b, await b.wix.signWebhook('AppInstalled', hooked, { appId: b.wix.appId, originInstanceId: '' })), 200, 'AppInstalled delivered')
  await b.app.webhooks.processor.idle()
  const started = await byInstance(b, hooked)
  t.equal(started.status, 200, 'webhook-started: found as soon as the delivery is acted on')
  t.match(started.json, { origin: 'webhook', instanceId: hooked, instanceVerified: true }, 'confirmed by the signed webhook')
})

t.test('a forged callback (own state, victim\'s instance id, garbage code) leaves the victim\'s installation the answer, its token working', async (t) => {
  const service = await startService(t, { db })
  const victim = await installByRedirect(service, VICTIM)
  const { owner, back, id } = await consent(service, ATTACKER)
  back.searchParams.set('instanceId', VICTIM)
  back.searchParams.set('code', 'OAUTH2.code.garbage')
  await owner.callback(back)
  await service.app.engine.waitFor(id, (w) => w.state !== 'CodeReceived', 10_000)

  const answer = (await byInstance(service, VICTIM)).json
  t.equal(answer.id, victim, 'the victim\'s instance id still answers the victim\'s installation, not the newer claim')
  t.equal(answer.instanceVerified, true, 'the one Wix confirmed')
  const token = await service.api('POST', `/api/installations/${VICTIM}/access-token`)
  t.equal(token.status, 200, 'the victim\'s access-token route answers')
  t.equal(service.wix.instanceOfToken(token.json.accessToken), VICTIM, 'with a working token for the victim\'s site')
  const forged = (await service.api('GET', `/api/installations/${id}`)).json
  t.match(forged, { state: 'ExchangeFailed', instanceId: null, claimedInstanceId: VICTIM, instanceVerified: false }, 'the forged one is a failed claim, shown as one')
})

t.test('the console and the CLI\'s view show a claim as a claim', async (t) => {
  const service = await startService(t, { db })
  const instance = 'd00dfeed-0000-4000-8000-00000000beef'
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', status: 400 })
  const { owner, back, id } = await consent(service, instance)
  await owner.callback(back)
  await service.app.engine.waitFor(id, (w) => w.state !== 'CodeReceived', 10_000)

  const signIn = await request(`${service.url}/console/sign-in`, {
    method: 'POST', body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: service.url },
  })
  await signIn.body.dump()
  const cookie = [signIn.headers['set-cookie'] ?? []].flat().map((c) => c.split(';')[0]).join('; ')
  const page = async (path: string) => {
    const res = await request(`${service.url}${path}`, { headers: { cookie, accept: 'text/html' } })
    return { status: res.statusCode, body: await res.body.text() }
  }
  const search = await page(`/console?q=${instance}`)
  t.equal(search.status, 200, 'searching the console by the claimed instance id answers')
  t.match(search.body, id, 'with the claiming installation')
  t.match(search.body, CLAIM_NOTE, 'marked as a claim')
  const detail = await page(`/console/installations/${instance}`)
  t.equal(detail.status, 200, 'its detail page, asked by the instance id, answers')
  t.match(detail.body, CLAIM_NOTE, 'and says the instance is only claimed')
})

t.test('AppInstalled while another site\'s browser is at consent: readable at once, tokened without that browser', async (t) => {
  const service = await startService(t, { db })
  const elsewhere = siteOwner(service)
  await elsewhere.openAppUrl('another-site-at-consent')
  // The attacker probe: one unauthenticated GET of the App URL, never followed.
  const probe = await request(`${service.url}/wix/app-url?token=probe`)
  await probe.body.dump()
  t.equal(probe.statusCode, 302, 'the probe starts an install that waits at consent')

  const instance = '7d8e9f00-1a2b-3c4d-5e6f-708192a3b4c5'
  t.equal(await post(service, await service.wix.signWebhook('AppInstalled', instance, { appId: service.wix.appId, originInstanceId: '' })), 200,
    'AppInstalled delivered')
  await service.app.webhooks.processor.idle()
  const seen = await byInstance(service, instance)
  t.equal(seen.status, 200, 'the installation is readable by its instance as soon as the delivery is acted on')
  const [delivery] = await service.app.sql<{ outcome: string; processed_at: Date | null }[]>`
    select outcome, processed_at from wix_install.webhook_deliveries where instance_id = ${instance}`
  t.ok(delivery!.processed_at, 'the delivery is processed, not deferred')
  t.match(delivery!.outcome, /^started installation/, 'it started the installation')
  const done = await service.app.engine.waitFor(seen.json.id, (w) => w.statePath === 'SetupIncomplete.waiting', 10_000)
  t.equal(done?.statePath, 'SetupIncomplete.waiting', 'and it is tokened and set up while the other browser is still at consent')
  const [other] = await service.app.sql<{ state: string }[]>`
    select state from wix_engine.workflows where id = ${await elsewhere.installationId()}`
  t.equal(other!.state, 'Authorizing', 'that browser never came back')
})

for (const order of ['before', 'after'] as const) {
  t.test(`AppInstalled ${order} the legacy Redirect URL: one live installation, holding the refresh token`, async (t) => {
    const service = await startService(t, { db })
    service.wix.appInstalledOnApprove = order
    const instance = order === 'before' ? '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0' : '9e8d7c6b-5a49-3827-1605-f4e3d2c1b0a9'
    const browser = await installByRedirect(service, instance)
    // 'after' sends it once the exchange's answer is on its way: wait for the delivery, not a moment.
    const delivered = () => service.wix.webhooksSent.filter((w) => w.eventType === 'AppInstalled').at(-1)?.status === 200
    await waitUntil('Wix delivered AppInstalled', async () => delivered(), 10_000)
    t.ok(delivered(), 'Wix delivered AppInstalled')
    await deliveriesDone(service, instance)
    await waitUntil('one live installation', async () => (await liveOf(service, instance)).length === 1, 10_000)
    const live = await liveOf(service, instance)
    t.same(live.map((w) => [w.id, w.origin]), [[browser, 'app-url']], 'exactly one live installation: the browser flow\'s')
    t.same(await tokenHolder(service, instance), { workflow_id: browser, refresh: true }, 'and it holds the refresh token')
    const all = await service.app.sql<{ id: string; state: string; superseded_by: string | null }[]>`
      select id, state, snapshot -> 'context' ->> 'supersededBy' as superseded_by from wix_engine.workflows
      where key = ${instance} and id <> ${browser}`
    for (const w of all) {
      t.same([w.state, w.superseded_by], ['Superseded', browser], `the webhook's installation ${w.id.slice(0, 8)} is Superseded, naming the browser flow's`)
      const mine = (await service.api('GET', `/api/installations/${browser}`)).json
      t.ok(mine.supersedes.includes(w.id), 'which names it back')
    }
    if (order === 'before') t.equal(all.length, 1, 'before: the webhook started an installation of its own, at once')
    const token = await service.api('POST', `/api/installations/${instance}/access-token`)
    t.equal(service.wix.instanceOfToken(token.json.accessToken), instance, 'the instance\'s access token works')
  })
}

t.test('WIX_AUTH_FLOW=legacy: the webhook\'s installation waits for the browser visibly, and the browser flow takes over', async (t) => {
  const service = await startService(t, { db, env: { WIX_AUTH_FLOW: 'legacy' } })
  const instance = '3c4d5e6f-7a8b-9c0d-1e2f-3a4b5c6d7e8f'
  const { owner, back, id } = await consent(service, instance)
  t.equal(await post(service, await service.wix.signWebhook('AppInstalled', instance, { appId: service.wix.appId, originInstanceId: '' })), 200,
    'AppInstalled arrives as the owner approves')
  await service.app.webhooks.processor.idle()
  const waiting = (await byInstance(service, instance)).json
  t.equal(waiting.statePath, 'AppUrlHit.awaitingBrowser', 'readable at once, in a state that says what it waits for')
  t.equal(service.wix.requests.filter((r) => r.endpoint === 'oauth2/token').length, 0, 'no client-credentials call while it waits')
  await owner.callback(back)
  await service.app.engine.waitFor(id, (w) => w.statePath === 'SetupIncomplete.waiting', 10_000)
  await service.app.engine.waitFor(waiting.id, (w) => w.state === 'Superseded', 10_000)
  t.match((await service.api('GET', `/api/installations/${waiting.id}`)).json, { state: 'Superseded', supersededBy: id, failure: { reason: 'superseded' } },
    'the webhook\'s installation ends Superseded by the browser flow\'s')
  t.equal((await byInstance(service, instance)).json.id, id, 'and the instance now answers the browser flow\'s installation')
})

t.test('a forged claim kept pending never blocks an AppRemoved acted on late', async (t) => {
  // The service's clock, set back while the victim installs: its installation began long before.
  let offsetMs = -10 * 60_000
  // The forged browser is shown the waiting page at once: a request still waiting at the end would
  // hold the service's close until its keep-alive connection times out (72 s).
  const service = await startService(t, { db, now: () => new Date(Date.now() + offsetMs), env: { REDIRECT_WAIT_MS: '0', SHUTDOWN_GRACE_MS: '0' } })
  const site = 'ab3f1c1e-2b4d-4c6e-8f00-0123456789ab'
  const victim = await installByRedirect(service, site)
  offsetMs = 0
  // The attacker's own consent, the Redirect URL edited to the victim's instance, its exchange held.
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', hang: true })
  const { owner, back, id } = await consent(service, ATTACKER)
  back.searchParams.set('instanceId', site)
  t.equal((await owner.callback(back)).status, 202, 'the forged claim\'s browser waits while Wix holds its exchange')
  await waitUntil('the forged claim is exchanging', async () => (await service.app.engine.get(id))?.state === 'CodeReceived', 10_000)

  // The owner removed the app a minute ago; Wix's AppRemoved, signed then, is acted on only now.
  service.wix.removeApp(site)
  t.equal(await post(service, await service.wix.signWebhook('AppRemoved', site, {}, { issuedAtMs: Date.now() - 60_000 })), 200, 'AppRemoved delivered')
  await deliveriesDone(service, site)
  t.equal((await service.app.engine.get(victim))?.state, 'Uninstalled', 'the victim\'s installation is uninstalled all the same')
  t.equal(await tokenHolder(service, site), undefined, 'and its tokens are erased')
  const [delivery] = await service.app.sql<{ outcome: string }[]>`
    select outcome from wix_install.webhook_deliveries where instance_id = ${site} and event_type = 'AppRemoved'`
  t.match(delivery!.outcome, `uninstalled ${victim}`, 'the delivery says what it did')
  service.wix.releaseAll()
})

t.test('a re-signed old AppRemoved after a reinstall: Wix still grants tokens, so nothing is uninstalled', async (t) => {
  const service = await startService(t, { db })
  const instance = '4d5e6f70-8192-a3b4-c5d6-e7f809102132'
  const first = await installByRedirect(service, instance)
  await service.wix.uninstallApp(instance)
  await service.app.engine.waitFor(first, (w) => w.state === 'Uninstalled', 10_000)
  const second = await installByRedirect(service, instance)

  // Wix resends the old AppRemoved, signed anew: its iat says nothing about when the app was removed.
  t.equal(await post(service, await service.wix.signWebhook('AppRemoved', instance, {}, { issuedAtMs: Date.now() + 1_000 })), 200, 'the resend is delivered')
  await deliveriesDone(service, instance)
  t.equal((await service.app.engine.get(second))?.state, 'SetupIncomplete', 'the reinstall stays installed')
  t.same(await tokenHolder(service, instance), { workflow_id: second, refresh: true }, 'with its tokens')
  const [delivery] = await service.app.sql<{ outcome: string }[]>`
    select outcome from wix_install.webhook_deliveries where instance_id = ${instance} and event_type = 'AppRemoved' order by received_at desc limit 1`
  t.match(delivery!.outcome, /^ignored: stale/, 'the stale event is recorded as such')
})

t.test('an AppRemoved Wix cannot be asked about is deferred: nothing uninstalled, no token erased', async (t) => {
  const service = await startService(t, { db })
  const instance = '6a7b8c9d-0e1f-4a2b-8c3d-4e5f60718293'
  const id = await installByRedirect(service, instance)
  // Wix answers nothing but 503 from now on: whether the app is still on the site cannot be known.
  service.wix.failNext({ endpoint: 'any', status: 503, times: 10_000 })
  t.equal(await post(service, await service.wix.signWebhook('AppRemoved', instance, {})), 200, 'AppRemoved delivered')
  await waitUntil('the delivery is deferred', async () => {
    const [d] = await service.app.sql<{ outcome: string | null }[]>`
      select outcome from wix_install.webhook_deliveries where instance_id = ${instance} and event_type = 'AppRemoved'`
    return d?.outcome?.startsWith('deferred:') === true
  })
  t.equal((await service.app.engine.get(id))?.state, 'SetupIncomplete', 'the installation is not uninstalled on an unverified event')
  t.same(await tokenHolder(service, instance), { workflow_id: id, refresh: true }, 'and its tokens are kept')
})

t.test('AppRemoved for the only site of a new Wix app: Wix refuses it, no other site to compare, and it is uninstalled', async (t) => {
  // A database of its own: no other instance's tokens to tell the app's credentials from this site's.
  const alone = await freshDatabase()
  t.teardown(alone.drop)
  const service = await startService(t, { db: alone })
  const { instanceId } = await service.wix.installApp()
  await service.app.webhooks.processor.idle()
  const installed = await byInstance(service, instanceId)
  await service.app.engine.waitFor(installed.json.id, (w) => w.statePath === 'SetupIncomplete.waiting', 10_000)

  t.equal((await service.wix.uninstallApp(instanceId)).status, 200, 'AppRemoved delivered')
  await deliveriesDone(service, instanceId)
  t.equal((await service.app.engine.get(installed.json.id))?.state, 'Uninstalled',
    'a refusal nobody can explain still agrees with the signed event: the site is uninstalled, not deferred for ever')
  t.equal(await tokenHolder(service, instanceId), undefined, 'and its tokens are erased')
})

t.test('cloned sites: shown as clones; CLONED_SITE_POLICY=reinstall asks the owner to reinstall', async (t) => {
  const origin = '1380b703-ce81-ff05-f115-39571d94dfcd'
  const confirm = await startService(t, { db })
  const { instanceId: cloned } = await confirm.wix.installApp({ originInstanceId: origin })
  await confirm.app.webhooks.processor.idle()
  const shown = (await byInstance(confirm, cloned)).json
  t.equal(shown.cloned, `cloned from ${origin}`, 'the installation says what it was cloned from')

  const reinstall = await startService(t, { db, env: { CLONED_SITE_POLICY: 'reinstall' } })
  const { instanceId } = await reinstall.wix.installApp({ originInstanceId: origin })
  await reinstall.app.webhooks.processor.idle()
  const asked = (await byInstance(reinstall, instanceId)).json
  t.equal(asked.state, 'ReinstallRequired', 'with CLONED_SITE_POLICY=reinstall, the clone is marked for reinstall')
  t.match(asked.failure, { reason: 'reinstall_required', detail: `cloned from instance ${origin}` }, 'saying why')
  t.equal(reinstall.wix.requests.filter((r) => r.endpoint === 'oauth2/token').length, 0, 'and no client-credentials token is minted for it')
})

t.test('WIX_AUTH_FLOW and CLONED_SITE_POLICY: defaults, and a bad value refused in one line', async (t) => {
  const sandbox = () => ({
    adminToken: randomBytes(32).toString('base64url'), cookieSecret: randomBytes(32).toString('base64url'),
    tokenEncryptionKey: `k1:${randomBytes(32).toString('base64')}`, appSecret: 's', webhookPrivateKey: '',
  })
  const config = loadConfig({}, sandbox)
  t.same([config.wixAuthFlow, config.clonedSitePolicy], ['both', 'confirm'], 'both and confirm by default')
  t.throws(() => loadConfig({ WIX_AUTH_FLOW: 'modern' }, sandbox), { message: 'Invalid configuration: WIX_AUTH_FLOW must be legacy, oauth or both' })
  t.throws(() => loadConfig({ CLONED_SITE_POLICY: 'ask' }, sandbox), { message: 'Invalid configuration: CLONED_SITE_POLICY must be confirm or reinstall' })
})
