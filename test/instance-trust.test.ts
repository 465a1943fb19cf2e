import t from 'tap'
import { request } from 'undici'
import { freshDatabase } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { startService, type Service } from './support/service.ts'

/**
 * The Redirect URL's instanceId is a claim anyone can edit: tried as an attacker who installs the
 * app on their own site and edits it to a victim's. The tokens, not the query, say whose they are.
 */

const db = await freshDatabase()
t.teardown(db.drop)

const VICTIM = '8a3f1c1e-2b4d-4c6e-8f00-0123456789ab'
const ATTACKER = '5e6f7a8b-9c0d-1e2f-3a4b-5c6d7e8f9a0b'

const tokenRow = async (service: Service, instanceId: string) => {
  const [row] = await service.app.sql<{ workflow_id: string; refresh_token: string | null; access_token: string | null }[]>`
    select workflow_id, refresh_token, access_token from wix_install.instance_tokens where instance_id = ${instanceId}`
  return row
}

/** A browser flow up to the URL Wix sends back, for a site Wix knows as `instanceId`. */
async function consent(service: Service, instanceId: string) {
  const owner = siteOwner(service)
  await owner.openAppUrl(`token-${Math.random()}`)
  const back = await owner.approve(instanceId)
  return { owner, back, id: await owner.installationId() }
}

async function installVictim(service: Service) {
  const { owner, back, id } = await consent(service, VICTIM)
  await owner.callback(back)
  await service.app.engine.waitFor(id, (w) => w.statePath === 'SetupIncomplete.waiting', 5_000)
  return id
}

t.test('a tampered instanceId leaves the other site\'s tokens untouched', async (t) => {
  const service = await startService(t, { db })
  const victim = await installVictim(service)
  const before = await tokenRow(service, VICTIM)
  t.equal(before?.workflow_id, victim, 'the victim\'s site holds its tokens')

  // The attacker installs on their own site, then edits the Redirect URL to name the victim's.
  const attack = await consent(service, ATTACKER)
  t.equal(attack.back.searchParams.get('instanceId'), ATTACKER, 'Wix sent the attacker back with their own instance')
  attack.back.searchParams.set('instanceId', VICTIM)
  const landed = await attack.owner.callback(attack.back)
  t.equal(landed.status, 302, 'the flow completes (it is a real install, on the attacker\'s site)')
  t.equal(new URL(landed.location!).searchParams.get('instanceId'), ATTACKER, 'and lands on the attacker\'s own instance')

  t.same(await tokenRow(service, VICTIM), before, 'the victim\'s tokens are exactly as they were')
  t.equal((await tokenRow(service, ATTACKER))?.workflow_id, attack.id, 'the attacker\'s tokens are stored under the attacker\'s instance')

  const theirs = (await service.api('GET', `/api/installations/${attack.id}`)).json
  t.equal(theirs.instanceId, ATTACKER, 'the attacker\'s installation is keyed by the instance Wix named')
  const done = theirs.history.find((h: { event: string }) => h.event === 'xstate.done.actor.exchangeCode')
  t.match(done.data.output.mismatch, `named instance ${VICTIM}, but Wix says the tokens belong to instance ${ATTACKER}`,
    'the mismatch is recorded in history in words')
  t.equal((await service.api('GET', `/api/installations/${VICTIM}`)).json.id, victim, 'the victim\'s instance id still finds the victim\'s installation')

  const token = await service.api('POST', `/api/installations/${VICTIM}/access-token`)
  t.equal(service.wix.instanceOfToken(token.json.accessToken), VICTIM, 'and the victim\'s backend still gets a token for the victim\'s site')
})

t.test('a garbage code naming another instance leaves no row that instance id finds', async (t) => {
  const service = await startService(t, { db })
  const victim = await installVictim(service)
  const { owner, back, id } = await consent(service, ATTACKER)
  back.searchParams.set('code', 'OAUTH2.code.garbage')
  back.searchParams.set('instanceId', VICTIM)
  await owner.callback(back)
  await service.app.engine.waitFor(id, (w) => w.state !== 'CodeReceived', 5_000)
  const failed = (await service.api('GET', `/api/installations/${id}`)).json
  t.equal(failed.state, 'ExchangeFailed', 'the garbage code fails its own installation')
  t.equal(failed.instanceId, null, 'which never takes the instance id it claimed')
  t.equal((await service.api('GET', `/api/installations/${VICTIM}`)).json.id, victim, 'so the victim\'s instance id still finds the victim\'s installation')
  const list = (await service.api('GET', `/api/installations?instanceId=${VICTIM}`)).json
  const listed = new Map(list.items.map((i: { id: string; instanceVerified: boolean }) => [i.id, i.instanceVerified]))
  t.equal(listed.get(victim), true, 'the list by instance id shows the victim\'s, confirmed by Wix')
  t.equal(listed.get(id), false, 'and the garbage one marked as a claim, never as the site\'s')
})

t.test('CLOSE_WINDOW: the close-window token is this installation\'s own, handed out once', async (t) => {
  const service = await startService(t, { db, env: { CLOSE_WINDOW: 'true' } })
  const first = await consent(service, VICTIM)
  const landed = await first.owner.callback(first.back)
  const closeWindow = new URL(landed.location!)
  t.equal(closeWindow.pathname, '/installer/close-window', 'the first answer goes to close-window')
  const handed = closeWindow.searchParams.get('access_token')!
  t.equal(service.wix.instanceOfToken(handed), VICTIM, 'with a token for this installation\'s instance')

  // The same browser (or anyone holding its flow cookie) replays the continue page.
  t.notOk(first.owner.browser.jar.has(first.owner.flowCookie), 'sent on for good, the browser keeps no flow cookie')
  // Whoever captured the flow cookie before it was cleared replays it.
  const flowCookie = { value: service.app.signCookie(first.id), path: '/wix', attributes: '' }
  first.owner.browser.jar.set(first.owner.flowCookie, flowCookie)
  const replay = await first.owner.browser.get(`${service.url}/wix/redirect/continue`)
  t.equal(replay.status, 200, 'a replayed continue is answered with a page')
  t.notOk(replay.location, 'not a redirect')
  t.notMatch(replay.body, /access_token|OAUTH2\.A\./, 'and carries no token')

  // The instance is reinstalled: a new installation, new tokens. The old flow cookie yields none.
  const second = await consent(service, VICTIM)
  const secondLanded = await second.owner.callback(second.back)
  const secondToken = new URL(secondLanded.location!).searchParams.get('access_token')!
  t.not(secondToken, handed, 'the reinstall hands its own browser its own token')
  first.owner.browser.jar.set(first.owner.flowCookie, flowCookie)
  const stale = await first.owner.browser.get(`${service.url}/wix/redirect/continue`)
  t.equal(stale.status, 200, 'the old flow cookie, replayed after the reinstall, gets a page')
  t.notOk(stale.location?.includes(secondToken), 'the first flow\'s cookie never yields the reinstall\'s token')
  t.notMatch(stale.body, /OAUTH2\.A\./, 'nor any token')
})

t.test('an exchange that ends late never writes over a newer installation\'s tokens', async (t) => {
  const service = await startService(t, { db, env: { REDIRECT_WAIT_MS: '100' } })
  // The first flow's exchange is held by Wix; meanwhile the site owner reinstalls and finishes.
  const slow = await consent(service, VICTIM)
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', delayMs: 3_000 })
  await slow.owner.callback(slow.back)
  const fresh = await consent(service, VICTIM)
  await fresh.owner.callback(fresh.back)
  await service.app.engine.waitFor(fresh.id, (w) => w.statePath === 'SetupIncomplete.waiting', 5_000)
  t.equal((await tokenRow(service, VICTIM))?.workflow_id, fresh.id, 'the newer installation holds the instance\'s tokens')

  const late = await service.app.engine.waitFor(slow.id, (w) => w.state !== 'CodeReceived', 10_000)
  t.equal(late?.state, 'ExchangeFailed', 'the older exchange, answered late, fails')
  t.match(String(late?.context.failure && (late.context.failure as { detail: string }).detail), /newer installation/, 'saying a newer installation holds the tokens')
  t.equal((await tokenRow(service, VICTIM))?.workflow_id, fresh.id, 'and the newer installation\'s tokens stay')
})

t.test('a cancelled exchange stores nothing', async (t) => {
  const service = await startService(t, { db, env: { REDIRECT_WAIT_MS: '100' } })
  const instanceId = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'
  const flow = await consent(service, instanceId)
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', delayMs: 2_000 })
  await flow.owner.callback(flow.back)
  const cancelled = await service.api('POST', `/api/installations/${flow.id}/cancel`)
  t.equal(cancelled.json.state, 'Cancelled', 'an admin cancels it mid-exchange')
  await new Promise((r) => setTimeout(r, 2_500))
  await service.app.engine.runner.idle()
  t.notOk(await tokenRow(service, instanceId), 'the exchange that ended after the cancel stored no tokens')
})

t.test('any GUID is an instance id, Wix\'s own non-RFC shapes included', async (t) => {
  const service = await startService(t, { db })
  const guid = '1380b703-ce81-ff05-f115-39571d94dfcd'
  const { owner, back, id } = await consent(service, guid)
  const landed = await owner.callback(back)
  t.equal(landed.status, 302, 'the Redirect URL takes it')
  await service.app.engine.waitFor(id, (w) => w.statePath === 'SetupIncomplete.waiting', 5_000)
  const one = (await service.api('GET', `/api/installations/${guid}`)).json
  t.same([one.id, one.state], [id, 'SetupIncomplete'], 'and the install completes under it')

  const upper = await consent(service, '2490c814-df92-0a16-a226-4a682ea5eb0e')
  upper.back.searchParams.set('instanceId', '2490C814-DF92-0A16-A226-4A682EA5EB0E')
  const upperLanded = await upper.owner.callback(upper.back)
  t.equal(upperLanded.status, 302, 'an upper-case GUID is taken too')
  await service.app.engine.waitFor(upper.id, (w) => w.statePath === 'SetupIncomplete.waiting', 5_000)
  t.equal((await service.api('GET', `/api/installations/${upper.id}`)).json.instanceId, '2490c814-df92-0a16-a226-4a682ea5eb0e',
    'and the installation is keyed in lower case, as Wix writes it')
})

t.test('malformed encodings on /wix/* are 400 INVALID_REQUEST and change nothing', async (t) => {
  const service = await startService(t, { db })
  const { owner, back, id } = await consent(service, VICTIM)
  const state = back.searchParams.get('state')!
  const fingerprint = async () => service.app.sql`select id, state, version from wix_engine.workflows order by id`
  const before = await fingerprint()
  const calls = service.wix.requests.length
  const urls = [
    `/wix/redirect?code=%E0%A4%A&state=${encodeURIComponent(state)}&instanceId=${VICTIM}`,
    `/wix/redirect?code=%ff%fe&state=${encodeURIComponent(state)}&instanceId=${VICTIM}`,
    `/wix/redirect?code=abc&state=${encodeURIComponent(state)}%zz&instanceId=${VICTIM}`,
    `/wix/redirect?code=abc&state=${encodeURIComponent(state)}&instanceId=${VICTIM}%C0%AF`,
    '/wix/app-url?token=%zz',
    '/wix/app-url?token=%ff%fe',
    '/wix/app-url?token=%',
    '/wix/install?x=%E0%A4%A',
    '/wix/redirect/continue?%zz',
  ]
  for (const url of urls) {
    const res = await owner.browser.get(`${service.url}${url}`)
    t.equal(res.status, 400, `${url}: 400`)
    t.match(res.body, 'INVALID_REQUEST', `${url}: INVALID_REQUEST`)
  }
  t.same(await fingerprint(), before, 'no installation was started or moved')
  t.equal(service.wix.requests.length, calls, 'and Wix heard nothing')
  const real = await owner.callback(back)
  t.equal(real.status, 302, 'the state was not spent: the genuine callback still installs')
  t.equal((await service.api('GET', `/api/installations/${id}`)).json.instanceId, VICTIM, 'under the instance Wix named')

  const raw = await request(`${service.url}/wix/app-url?token=${encodeURIComponent('a b+c/é')}`)
  await raw.body.dump()
  t.equal(raw.statusCode, 302, 'while a well-encoded token with any characters is taken')
})

t.test('tokens Wix gave are held when the instance lookup fails: the retry does not spend the code twice', async (t) => {
  const service = await startService(t, { db })
  const instanceId = '3b4c5d6e-7f80-9102-a3b4-c5d6e7f80912'
  const { owner, back, id } = await consent(service, instanceId)
  service.wix.failNext({ endpoint: 'oauth2/token-info', status: 503, times: 4 })
  service.wix.failNext({ endpoint: 'apps/v1/instance', status: 503, times: 4 })
  await owner.callback(back)
  const done = await service.app.engine.waitFor(id, (w) => w.state !== 'CodeReceived', 15_000)
  t.equal(done?.state, 'SetupIncomplete', 'the installation completes once Wix answers the lookup')
  t.equal(service.wix.countExchanges(back.searchParams.get('code')!), 1, 'with its code exchanged once')
  t.equal((await tokenRow(service, instanceId))?.workflow_id, id, 'and its tokens filed under the instance')
  const held = await service.app.sql`select 1 from wix_install.exchanged_tokens where workflow_id = ${id}`
  t.equal(held.length, 0, 'no longer held by the installation')
})

t.test('tokens held mid-exchange go when the installation ends without filing them', async (t) => {
  const service = await startService(t, { db, env: { REDIRECT_WAIT_MS: '100' } })
  const instanceId = '4c5d6e7f-8091-a2b3-c4d5-e6f708192a3b'
  const { owner, back, id } = await consent(service, instanceId)
  // Wix answers the exchange, then never says whose the tokens are: they stay held.
  service.wix.failNext({ endpoint: 'oauth2/token-info', status: 503, times: 1_000 })
  service.wix.failNext({ endpoint: 'apps/v1/instance', status: 503, times: 1_000 })
  await owner.callback(back)
  const heldRows = () => service.app.sql`select 1 from wix_install.exchanged_tokens where workflow_id = ${id}`
  const { waitUntil } = await import('./support/process.ts')
  await waitUntil('the tokens are held', async () => (await heldRows()).length === 1, 10_000)
  const cancelled = await service.api('POST', `/api/installations/${id}/cancel`)
  t.equal(cancelled.json.state, 'Cancelled', 'an admin ends the installation')
  await waitUntil('the held tokens are dropped', async () => (await heldRows()).length === 0, 5_000)
  t.notOk(await tokenRow(service, instanceId), 'and nothing was filed for the instance')
})
