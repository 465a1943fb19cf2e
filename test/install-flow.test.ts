import t from 'tap'
import { freshDatabase } from './support/database.ts'
import { latestInstallationId, siteOwner } from './support/flow.ts'
import { startService } from './support/service.ts'

/** The whole Wix flow over real HTTP: a browser, this service, and a fake Wix on its own port. */

const db = await freshDatabase()
t.teardown(db.drop)

t.test('App URL → consent → callback → SetupIncomplete → finish → Finished', async (t) => {
  const service = await startService(t, { db })
  const owner = siteOwner(service)

  const first = await owner.openAppUrl('install-token-1')
  t.equal(first.status, 302, 'the App URL redirects the browser')
  const installer = owner.installerUrl
  t.equal(`${installer.origin}${installer.pathname}`, `${service.fake.url}/installer/install`, 'to the Wix installer')
  t.equal(installer.searchParams.get('token'), 'install-token-1', "with Wix's token")
  t.equal(installer.searchParams.get('appId'), service.wix.appId, 'our app id')
  t.equal(installer.searchParams.get('redirectUrl'), `${service.url}/wix/redirect`, 'our Redirect URL')
  t.match(owner.state, /^[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/, 'and a state: the installation, then 256 random bits')
  const setCookie = String(first.headers['set-cookie'])
  t.match(setCookie, /HttpOnly/, 'the state cookie is HttpOnly')
  t.match(setCookie, /SameSite=Lax/, 'and SameSite=Lax, so it survives the top-level redirect back')
  t.notMatch(setCookie, new RegExp(`=${owner.state};`), 'and signed, not the bare state')
  t.equal(first.headers['cross-origin-opener-policy'], 'unsafe-none', 'Wix may open it in its window')
  t.notOk(first.headers['x-frame-options'], 'or frame it')

  const id = await latestInstallationId(service)
  let one = await service.api('GET', `/api/installations/${id}`)
  t.equal(one.json.state, 'Authorizing', 'the installation waits at the consent screen')
  t.equal(one.json.instanceId, null, 'with no instanceId yet')

  const back = await owner.approve('8a3f1c1e-2b4d-4c6e-8f00-0123456789ab')
  const done = await owner.callback(back)
  t.equal(done.status, 302, 'the Redirect URL sends the browser on')
  t.equal(done.location, `${service.url}/?instanceId=8a3f1c1e-2b4d-4c6e-8f00-0123456789ab`, 'to the post-install page')

  one = await service.api('GET', `/api/installations/8a3f1c1e-2b4d-4c6e-8f00-0123456789ab`)
  t.equal(one.status, 200, 'the installation is found by its instanceId')
  t.equal(one.json.id, id, 'the same installation')
  t.equal(one.json.state, 'SetupIncomplete', 'tokens are stored; the app has setup to do')

  const finish = await service.api('POST', `/api/installations/${id}/finish`)
  t.equal(finish.status, 200, 'finish answers 200')
  t.equal(finish.json.state, 'Finished', 'and the installation is Finished')

  const calls = service.wix.requests
  t.same(calls.map((c) => `${c.endpoint} ${(c.body as { grant_type?: string }).grant_type ?? ''}`.trim()), [
    'oauth/access authorization_code',
    'oauth2/token-info',
    'oauth/access refresh_token',
    'bi-event',
  ], 'Wix received exactly: the code exchange, the instance lookup, a refresh, the bi-event')
  const [exchange, lookup, refresh, bi] = calls
  t.equal(lookup!.method, 'POST', 'the instance is asked of Wix\'s token-info, which needs no permission')
  t.same(Object.keys(lookup!.body as object), ['token'], 'about the new access token, and nothing else')
  const code = back.searchParams.get('code')
  t.same(exchange!.body, { grant_type: 'authorization_code', client_id: service.wix.appId, client_secret: service.wix.appSecret, code }, 'the exchange body is as docs/wix.md says')
  const refreshToken = (refresh!.body as { refresh_token: string }).refresh_token
  t.same(refresh!.body, { grant_type: 'refresh_token', client_id: service.wix.appId, client_secret: service.wix.appSecret, refresh_token: refreshToken }, 'the refresh body is as docs/wix.md says')
  t.ok(service.wix.refreshTokens.has(refreshToken), 'with the refresh token Wix issued at the exchange')
  t.notMatch(String(bi!.headers.authorization), /^Bearer /, 'the bi-event Authorization header is the raw token')
  t.ok(service.wix.isValidAccessToken(String(bi!.headers.authorization)), 'a freshly minted, valid access token')
  t.same(bi!.body, { eventName: 'APP_FINISHED_CONFIGURATION' }, 'announcing APP_FINISHED_CONFIGURATION')

  const again = await service.api('POST', `/api/installations/${id}/finish`)
  t.equal(again.status, 200, 'finishing again is harmless')
  t.equal(service.wix.requests.length, 4, 'and calls Wix no more')

  const history = (await service.api('GET', `/api/installations/${id}`)).json.history
  t.same(history.map((h: { to: string }) => h.to), [
    'AppUrlHit.redirecting', 'Authorizing', 'CodeReceived', 'Tokened', 'SetupIncomplete.waiting', 'SetupIncomplete.finishing', 'Finished',
  ], 'history walks every state in order')
  t.equal(history[2].data.code, '[redacted]', 'the code never reaches history')
  const [tokened, sentOn] = await db.sql`
    select write_seq from wix_engine.workflow_events where workflow_id = ${id} and seq in (4, 5) order by seq`
  t.equal(tokened!.write_seq, sentOn!.write_seq, 'the browser waiting on the exchange was sent on in the write of its result: one commit')

  const [tokens] = await db.sql`select refresh_token, access_token from wix_install.instance_tokens where instance_id = ${'8a3f1c1e-2b4d-4c6e-8f00-0123456789ab'}`
  t.match(tokens!.refresh_token, /^v1\.k1\./, 'the refresh token is stored encrypted, naming its key')
  t.notMatch(tokens!.refresh_token, refreshToken, 'never in the clear')

  const everything = service.logs.join('\n') + JSON.stringify(history)
  for (const secret of [service.wix.appSecret, code!, refreshToken, String(bi!.headers.authorization), owner.state]) {
    t.notOk(everything.includes(secret), 'no secret in the logs or the history')
  }
})

t.test('an install started from the app’s own platform skips the App URL', async (t) => {
  const service = await startService(t, { db })
  const owner = siteOwner(service)
  const start = await owner.startFromPlatform()
  t.equal(start.status, 302, '/wix/install redirects to the installer')
  t.equal(owner.installerUrl.searchParams.has('token'), false, 'without a Wix token')
  const id = await latestInstallationId(service)
  const history = (await service.api('GET', `/api/installations/${id}`)).json.history
  t.same(history.map((h: { to: string }) => h.to), ['Authorizing'], 'it starts at Authorizing')
  const done = await owner.callback(await owner.approve())
  t.equal(done.status, 302, 'and completes the same way')
  t.equal((await service.api('GET', `/api/installations/${id}`)).json.state, 'SetupIncomplete', 'to SetupIncomplete')
})

t.test('AUTO_FINISH=true sends the bi-event without being asked', async (t) => {
  const service = await startService(t, { db, env: { AUTO_FINISH: 'true' } })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  await owner.callback(await owner.approve())
  const id = await latestInstallationId(service)
  const finished = await service.app.engine.waitFor(id, (w) => w.state === 'Finished', 5_000)
  t.equal(finished?.state, 'Finished', 'the installation finishes by itself')
  t.equal(service.wix.requests.filter((r) => r.endpoint === 'bi-event').length, 1, 'one bi-event reached Wix')
})

t.test('CLOSE_WINDOW=true ends at Wix’s close-window with a valid access token', async (t) => {
  const service = await startService(t, { db, env: { CLOSE_WINDOW: 'true' } })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const done = await owner.callback(await owner.approve())
  t.equal(done.status, 302, 'a redirect')
  const target = new URL(done.location!)
  t.equal(`${target.origin}${target.pathname}`, `${service.fake.url}/installer/close-window`, 'to close-window')
  t.ok(service.wix.isValidAccessToken(target.searchParams.get('access_token')!), 'carrying an access token Wix accepts')
  t.equal(done.headers['referrer-policy'], 'no-referrer', 'which no Referer header will leak')
  const id = await latestInstallationId(service)
  t.equal((await service.api('GET', `/api/installations/${id}`)).json.state, 'SetupIncomplete', 'and the installation is SetupIncomplete')
})

t.test('declining at the consent screen is a failure with a reason', async (t) => {
  const service = await startService(t, { db })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const page = await owner.callback(await owner.cancel())
  t.equal(page.status, 200, 'the browser gets a page saying so')
  t.match(page.body, /^<!doctype html>/, 'an HTML page, sent as it is')
  t.match(page.body, /cancelled/i, 'that the installation was cancelled')
  const one = (await service.api('GET', `/api/installations/${await latestInstallationId(service)}`)).json
  t.equal(one.state, 'ConsentAbandoned', 'the installation is ConsentAbandoned')
  t.equal(one.failure.reason, 'consent_declined', 'because the owner declined')
  t.equal(service.wix.requests.length, 0, 'and Wix was never called')
})
