import Fastify from 'fastify'
import t from 'tap'
import { request } from 'undici'
import { createFakeWix, fakeWixPlugin, startFakeWix } from '../src/sandbox/fake-wix.ts'

const redirectUrl = 'https://app.example/wix/redirect?keep=1'

async function start(t: { teardown(fn: () => unknown): void }, opts: Parameters<typeof startFakeWix>[0] = {}) {
  const fake = await startFakeWix({ appId: 'app-1', appSecret: 'secret-1', ...opts })
  t.teardown(fake.close)
  return fake
}

const installQuery = (extra: Record<string, string> = {}) =>
  new URLSearchParams({ appId: 'app-1', redirectUrl, state: 'S-123', token: 'wix-token-1', ...extra })

async function get(url: string) {
  const res = await request(url)
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: text ? JSON.parse(text) : undefined }
}

async function approve(url: string, extra: Record<string, string> = {}) {
  const res = await get(`${url}/installer/approve?${installQuery(extra)}`)
  return { ...res, location: new URL(String(res.headers.location)) }
}

const exchange = (url: string, code: string) =>
  post(`${url}/oauth/access`, { grant_type: 'authorization_code', client_id: 'app-1', client_secret: 'secret-1', code })

t.test('the consent page offers Approve and Cancel', async (t) => {
  const { url } = await start(t)
  const page = await get(`${url}/installer/install?${installQuery({ state: '<script>alert(1)</script>' })}`)
  t.equal(page.status, 200, 'the consent page loads')
  t.match(page.headers['content-type'], /text\/html/, 'the consent page is HTML')
  t.match(page.text, /<button[^>]*>Approve<\/button>/, 'the page has an Approve button')
  t.match(page.text, /<button[^>]*>Cancel<\/button>/, 'the page has a Cancel button')
  t.notOk(page.headers['x-frame-options'], 'the page can be framed')
  t.ok(page.headers['x-wix-request-id'], 'the page carries an x-wix-request-id')
  t.notMatch(page.text, /<script>/, 'interpolated values are escaped')

  const wrongApp = await get(`${url}/installer/install?${installQuery({ appId: 'other-app' })}`)
  t.equal(wrongApp.status, 400, 'an unknown appId gets a 400')
  t.match(wrongApp.text, /Unknown app/, 'the 400 page says the app is unknown')

  const noRedirect = await get(`${url}/installer/install?appId=app-1&state=S`)
  t.equal(noRedirect.status, 400, 'a missing redirectUrl gets a 400 page')
})

t.test('Approve redirects with a code, the state and a stable instanceId', async (t) => {
  const { url, wix } = await start(t)
  const first = await approve(url)
  t.equal(first.status, 302, 'approve redirects')
  t.equal(first.location.origin + first.location.pathname, 'https://app.example/wix/redirect', 'approve goes to the redirectUrl')
  t.equal(first.location.searchParams.get('keep'), '1', 'the redirectUrl keeps its own query')
  t.equal(first.location.searchParams.get('state'), 'S-123', 'approve passes the state back')
  t.ok(wix.issuedCodes.has(first.location.searchParams.get('code')!), 'approve carries a code the fake issued')
  const instanceId = first.location.searchParams.get('instanceId')
  t.match(instanceId, /^[0-9a-f-]{36}$/, 'approve carries a UUID instanceId')

  const reinstall = await approve(url)
  t.equal(reinstall.location.searchParams.get('instanceId'), instanceId, 'the same Wix token reinstalls the same instance')
  t.not(reinstall.location.searchParams.get('code'), first.location.searchParams.get('code'), 'a reinstall gets a new code')

  const other = await approve(url, { token: 'wix-token-2' })
  t.not(other.location.searchParams.get('instanceId'), instanceId, 'another Wix token is another instance')

  const forced = '4b7f3d0e-9d3e-4c4a-9b0a-1f2e3d4c5b6a'
  const pinned = await approve(url, { instanceId: forced })
  t.equal(pinned.location.searchParams.get('instanceId'), forced, 'a test can force the instanceId')
})

t.test('Cancel redirects with access_denied and the state', async (t) => {
  const { url } = await start(t)
  const res = await get(`${url}/installer/cancel?${installQuery()}`)
  const location = new URL(String(res.headers.location))
  t.equal(res.status, 302, 'cancel redirects')
  t.equal(location.searchParams.get('error'), 'access_denied', 'cancel says access_denied')
  t.ok(location.searchParams.get('error_description'), 'cancel describes the error')
  t.equal(location.searchParams.get('state'), 'S-123', 'cancel passes the state back')
  t.notOk(location.searchParams.get('code'), 'cancel carries no code')
})

t.test('codes are single-use and expire', async (t) => {
  let clock = Date.parse('2025-01-01T00:00:00Z')
  const { url } = await start(t, { now: () => clock })
  const code = (await approve(url)).location.searchParams.get('code')!

  const ok = await exchange(url, code)
  t.equal(ok.status, 200, 'a fresh code exchanges')
  t.same(Object.keys(ok.json).sort(), ['access_token', 'refresh_token'], 'the answer has exactly the two tokens')
  const again = await exchange(url, code)
  t.equal(again.status, 400, 'a used code is refused')
  t.type(again.json.message, 'string', 'the refusal has a message')
  t.type(again.json.details, 'object', 'the refusal has details')

  const late = (await approve(url)).location.searchParams.get('code')!
  clock += 600_000
  const expired = await exchange(url, late)
  t.equal(expired.status, 400, 'a code older than 10 minutes is refused')
  t.match(expired.json.message, /expired/, 'the refusal says the code expired')

  const unknown = await exchange(url, 'OAUTH2.made-up')
  t.equal(unknown.status, 400, 'an unknown code is refused')
  const wrongSecret = await post(`${url}/oauth/access`, { grant_type: 'authorization_code', client_id: 'app-1', client_secret: 'nope', code: late })
  t.equal(wrongSecret.status, 401, 'a wrong client secret gets a 401')
})

t.test('refresh keeps the refresh token; revoked tokens are refused', async (t) => {
  let clock = 1_000_000
  const { url, wix } = await start(t, { now: () => clock })
  const code = (await approve(url)).location.searchParams.get('code')!
  const tokens = (await exchange(url, code)).json
  const refresh = { grant_type: 'refresh_token', client_id: 'app-1', client_secret: 'secret-1', refresh_token: tokens.refresh_token }

  const fresh = await post(`${url}/oauth/access`, refresh)
  t.equal(fresh.json.refresh_token, tokens.refresh_token, 'a refresh answers the same refresh token')
  t.ok(wix.isValidAccessToken(fresh.json.access_token), 'a refresh mints a valid access token')
  clock += 300_000
  t.notOk(wix.isValidAccessToken(fresh.json.access_token), 'an access token dies after 5 minutes')

  wix.revokeRefreshToken(tokens.refresh_token)
  const revoked = await post(`${url}/oauth/access`, refresh)
  t.equal(revoked.status, 400, 'a revoked refresh token is refused')
})

t.test('the bi-event wants the raw access token and the right event', async (t) => {
  const { url } = await start(t)
  const code = (await approve(url)).location.searchParams.get('code')!
  const { access_token } = (await exchange(url, code)).json
  const event = { eventName: 'APP_FINISHED_CONFIGURATION' }

  const bearer = await post(`${url}/apps/v1/bi-event`, event, { authorization: `Bearer ${access_token}` })
  t.equal(bearer.status, 401, 'a Bearer prefix is refused with 401')
  t.ok(bearer.headers['x-wix-request-id'], 'the refusal carries an x-wix-request-id')
  const missing = await post(`${url}/apps/v1/bi-event`, event)
  t.equal(missing.status, 401, 'no Authorization header is refused with 401')
  const wrongEvent = await post(`${url}/apps/v1/bi-event`, { eventName: 'SOMETHING_ELSE' }, { authorization: access_token })
  t.equal(wrongEvent.status, 400, 'another event name is refused with 400')
  const ok = await post(`${url}/apps/v1/bi-event`, event, { authorization: access_token })
  t.equal(ok.status, 200, 'the raw token and the right event are accepted')
  t.same(ok.json, {}, 'the answer is an empty object')

  const closing = await get(`${url}/installer/close-window?access_token=${encodeURIComponent(access_token)}`)
  t.equal(closing.status, 200, 'the close-window page loads')
  t.match(closing.text, /Installation complete/, 'the close-window page says the install is complete')
  t.match(closing.text, /access token is valid/, 'the close-window page says the token is valid')
  t.notOk(closing.text.includes(access_token), 'the close-window page does not echo the token')
})

t.test('the control endpoints queue failures, list redacted requests and reset', async (t) => {
  const { url, wix } = await start(t)
  const code = (await approve(url)).location.searchParams.get('code')!

  const queued = await post(`${url}/_control/fail`, { endpoint: 'oauth/access', grant: 'authorization_code', status: 429, retryAfterSeconds: 3 })
  t.equal(queued.status, 204, 'a failure is queued with 204')
  const limited = await exchange(url, code)
  t.equal(limited.status, 429, 'the queued failure answers the next matching call')
  t.equal(limited.headers['retry-after'], '3', 'a 429 carries Retry-After')
  const ok = await exchange(url, code)
  t.equal(ok.status, 200, 'the failure applies once and leaves the code unspent')
  t.equal(wix.countExchanges(code), 2, 'both attempts reached the fake')

  const listed = await get(`${url}/_control/requests`)
  const list = JSON.parse(listed.text)
  t.same(list.map((r: { status: number }) => r.status), [429, 200], 'requests are listed in order with the status returned')
  t.equal(list[0].body.code, '[redacted]', 'the listed code is redacted')
  t.equal(list[0].body.client_secret, '[redacted]', 'the listed client secret is redacted')
  t.notOk(listed.text.includes(code) || listed.text.includes('secret-1'), 'no secret appears in the listing')
  t.equal(wix.requests[0]?.body && (wix.requests[0].body as { code: string }).code, code, 'the in-process record keeps the raw body for tests')

  t.equal((await post(`${url}/_control/reset`, {})).status, 204, 'reset answers 204')
  t.same(JSON.parse((await get(`${url}/_control/requests`)).text), [], 'reset forgets recorded requests')
})

t.test('bad input gets a Wix-style 400, never a 500', async (t) => {
  const { url } = await start(t)
  const cases: Array<[string, string, unknown, Record<string, string>?]> = [
    ['invalid JSON', '/oauth/access', '{not json'],
    ['an array body', '/oauth/access', '[1,2]'],
    ['no grant_type', '/oauth/access', { client_id: 'app-1' }],
    ['an unknown grant', '/oauth/access', { grant_type: 'password', client_id: 'app-1', client_secret: 'x' }],
    ['a bad failure spec', '/_control/fail', { endpoint: 'nowhere' }],
    ['a failure with a 200 status', '/_control/fail', { endpoint: 'any', status: 200 }],
  ]
  for (const [what, path, body] of cases) {
    const res = await post(`${url}${path}`, body)
    t.equal(res.status, 400, `${what} gets a 400`)
    t.type(res.json?.message, 'string', `${what} gets a Wix-style message`)
  }
  const form = await request(`${url}/oauth/access`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'code=x' })
  await form.body.dump()
  t.ok(form.statusCode >= 400 && form.statusCode < 500, 'a body that is not JSON gets a 4xx')
  const nowhere = await get(`${url}/no/such/route`)
  t.equal(nowhere.status, 404, 'an unknown route gets a 404')
})

t.test('a hanging request is released when the fake closes', async (t) => {
  const fake = await startFakeWix({ appId: 'app-1', appSecret: 'secret-1' })
  fake.wix.failNext({ endpoint: 'any', hang: true })
  const pending = exchange(fake.url, 'whatever').then((r) => r.status, () => 'dropped')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(fake.wix.requests[0]?.status, 0, 'the request is held without an answer')
  await fake.close()
  t.equal(await pending, 504, 'closing answers the held request instead of waiting')
})

t.test('the plugin works under a prefix in a host app', async (t) => {
  const app = Fastify()
  const wix = createFakeWix({ appId: 'app-1', appSecret: 'secret-1' })
  await app.register(fakeWixPlugin, { prefix: '/_sandbox/wix', appId: 'app-1', appSecret: 'secret-1', wix })
  app.get('/', async () => ({ host: true }))
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())

  const page = await get(`${url}/_sandbox/wix/installer/install?${installQuery()}`)
  const action = /<form method="get" action="([^"]+)">/.exec(page.text)?.[1]
  const target = new URL(action!, `${url}/_sandbox/wix/installer/install`)
  t.equal(target.pathname, '/_sandbox/wix/installer/approve', 'the Approve form resolves under the prefix')
  const approved = await get(`${target}?${installQuery()}`)
  t.equal(approved.status, 302, 'approve works under the prefix')
  const code = new URL(String(approved.headers.location)).searchParams.get('code')!
  t.equal((await exchange(`${url}/_sandbox/wix`, code)).status, 200, 'the token endpoint works under the prefix')
  t.equal(wix.countExchanges(code), 1, 'the shared state object saw the exchange')
  t.same(JSON.parse((await get(`${url}/`)).text), { host: true }, 'the host app keeps its own routes')
})

t.test('client credentials, the instance lookup and token-info answer as docs/wix.md says', async (t) => {
  const { url, wix } = await start(t)
  const instanceId = '1380b703-ce81-ff05-f115-39571d94dfcd'
  const cc = (body: Record<string, unknown>) => post(`${url}/oauth2/token`, { grant_type: 'client_credentials', client_id: 'app-1', client_secret: 'secret-1', instance_id: instanceId, ...body })
  const minted = await cc({})
  t.equal(minted.status, 200, 'a client-credentials token is granted')
  t.same([minted.json.token_type, minted.json.expires_in], ['Bearer', 14_400], 'Bearer, for 4 hours')
  t.ok(wix.isValidAccessToken(minted.json.access_token), 'and valid')
  const wrong = await cc({ client_secret: 'nope' })
  t.same([wrong.status, wrong.json.details.reason], [401, 'INVALID_CLIENT'], 'a wrong secret is a 401 INVALID_CLIENT')

  const lookup = await request(`${url}/apps/v1/instance`, { headers: { authorization: minted.json.access_token } })
  const instance = (await lookup.body.json()) as { instance: { instanceId: string } }
  t.equal(lookup.statusCode, 200, 'the instance lookup takes the raw token')
  t.equal(instance.instance.instanceId, instanceId, 'and names the instance the token belongs to')
  const bearer = await request(`${url}/apps/v1/instance`, { headers: { authorization: `Bearer ${minted.json.access_token}` } })
  await bearer.body.dump()
  t.equal(bearer.statusCode, 401, 'a Bearer-prefixed token is refused, as on every Wix call')
  const info = await post(`${url}/oauth2/token-info`, { token: minted.json.access_token })
  t.same([info.json.active, info.json.instanceId], ['true', instanceId], 'token-info says the same (`active` a string, as in Wix\'s own example)')
})

t.test('webhooks are RS256 JWTs whose data is the event as JSON text; uninstalling kills the site\'s tokens', async (t) => {
  const { url, wix } = await start(t)
  const { jwtVerify, importSPKI } = await import('jose')
  const body = await wix.signWebhook('AppInstalled', '6f1c2a3b-4d5e-0f00-9a8b-7c6d5e4f3a2b', { appId: 'app-1', originInstanceId: '' })
  const { payload, protectedHeader } = await jwtVerify(body, await importSPKI(wix.publicKeyPem, 'RS256'))
  t.equal(protectedHeader.alg, 'RS256', 'signed RS256 with the key whose public half the dashboard shows')
  const event = JSON.parse(payload.data as string)
  t.same([event.eventType, event.instanceId, JSON.parse(event.data)], ['AppInstalled', '6f1c2a3b-4d5e-0f00-9a8b-7c6d5e4f3a2b', { appId: 'app-1', originInstanceId: '' }],
    'its data is {eventType, instanceId, data: JSON text}')

  const { code, instanceId } = wix.issueCode()
  const tokens = (await exchange(url, code)).json
  t.ok(wix.installedInstances().includes(instanceId), 'an approved site has the app')
  await wix.uninstallApp(instanceId)
  t.notOk(wix.installedInstances().includes(instanceId), 'uninstalling removes it')
  t.notOk(wix.isValidAccessToken(tokens.access_token), 'its access token stops working')
  const refresh = await post(`${url}/oauth/access`, { grant_type: 'refresh_token', client_id: 'app-1', client_secret: 'secret-1', refresh_token: tokens.refresh_token })
  t.equal(refresh.status, 400, 'its refresh token is refused')
  const cc = await post(`${url}/oauth2/token`, { grant_type: 'client_credentials', client_id: 'app-1', client_secret: 'secret-1', instance_id: instanceId })
  t.same([cc.status, cc.json.details.reason], [400, 'APP_NOT_INSTALLED'], 'and so is a client-credentials token for it')
  t.same(wix.webhooksSent.map((w) => [w.eventType, w.status]), [['AppRemoved', 0]], 'AppRemoved was sent (to no one: no webhook URL is registered)')
})

t.test('the installer redirects only to the registered Redirect URL, once one is registered', async (t) => {
  const { url, wix } = await start(t)
  wix.register({ redirectUrl: 'https://app.example/wix/redirect' })
  const elsewhere = await get(`${url}/installer/approve?${installQuery()}`)
  t.equal(elsewhere.status, 400, 'a code is never sent to another URL')
  t.notOk(elsewhere.headers.location, 'no redirect')
  const registered = await approve(url, { redirectUrl: 'https://app.example/wix/redirect' })
  t.equal(registered.status, 302, 'the registered one gets it')
})
