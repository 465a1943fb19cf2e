import { createServer as createHttpServer } from 'node:http'
import { createServer } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { startFakeWix, type FakeWix } from '../src/sandbox/fake-wix.ts'
import { createWixClient, parseRetryAfter, WixApiError, type WixCallInfo } from '../src/wix/client.ts'

const redirectUrl = 'https://app.example/wix/redirect'

/** Clicks Approve the way a browser would, without following the redirect. */
async function approve(url: string, wix: FakeWix): Promise<string> {
  const q = new URLSearchParams({ appId: wix.appId, redirectUrl, state: 'state-1', token: 'install-token' })
  const res = await request(`${url}/installer/approve?${q}`)
  await res.body.dump()
  const location = new URL(String(res.headers.location))
  return location.searchParams.get('code')!
}

async function setup(t: { teardown(fn: () => unknown): void }, clientOpts: { timeoutMs?: number } = {}) {
  const fake = await startFakeWix({})
  const logs: Array<{ obj: object; msg: string }> = []
  const calls: WixCallInfo[] = []
  const client = createWixClient({
    apiUrl: `${fake.url}/`, appId: fake.wix.appId, appSecret: fake.wix.appSecret, ...clientOpts,
    log: { warn: (obj, msg) => logs.push({ obj, msg }) },
    onCall: (info) => calls.push(info),
  })
  t.teardown(async () => { await client.close(); await fake.close() })
  return { ...fake, client, logs, calls }
}

/** Fails the test if any of the secrets shows up where errors and logs go. */
function assertNoSecrets(t: { notOk(v: unknown, msg: string): unknown }, err: unknown, logs: unknown[], secrets: string[]) {
  const errors = [err].flat() as Error[]
  const surfaces = [JSON.stringify(errors), JSON.stringify(logs), ...errors.flatMap((e) => [e.message, String(e.stack)])]
  for (const secret of secrets) {
    t.notOk(surfaces.some((s) => s.includes(secret)), `no error field or log line contains the secret ${secret.slice(0, 8)}…`)
  }
}

async function rejection(p: Promise<unknown>): Promise<WixApiError> {
  try { await p } catch (e) { if (e instanceof WixApiError) return e; throw e }
  throw new Error('expected the call to fail')
}

t.test('the code exchange, the refresh and the bi-event reach Wix as Wix expects', async (t) => {
  const { url, wix, client, logs, calls } = await setup(t)
  const code = await approve(url, wix)

  const tokens = await client.exchangeCode(code)
  t.ok(wix.isValidAccessToken(tokens.accessToken), 'the exchange returns an access token Wix accepts')
  t.match(tokens.refreshToken, /^OAUTH2\./, 'the exchange returns a refresh token')
  t.same(wix.requests[0]?.body, {
    grant_type: 'authorization_code', client_id: wix.appId, client_secret: wix.appSecret, code,
  }, 'the exchange sends the authorization_code grant as JSON')

  const again = await rejection(client.exchangeCode(code))
  t.equal(again.code, 'WIX_REJECTED', 'a second exchange of one code is refused')
  t.equal(again.retryable, false, 'a refused exchange is not retryable')
  t.equal(again.status, 400, 'the refusal keeps the HTTP status')
  t.ok(again.wixRequestId, 'the refusal keeps the x-wix-request-id')
  t.match(again.message, /^Wix refused the code exchange \(400\): .*already used/, 'the message quotes Wix')
  t.match(logs.at(-1), { obj: { endpoint: 'oauth/access', status: 400, wixRequestId: again.wixRequestId, code: 'WIX_REJECTED' } },
    'the failure is logged with its Wix request id')

  const refreshed = await client.refreshAccessToken(tokens.refreshToken)
  t.not(refreshed.accessToken, tokens.accessToken, 'a refresh mints a new access token')
  t.equal(refreshed.refreshToken, tokens.refreshToken, 'a refresh keeps the same refresh token')
  t.equal((wix.requests.at(-1)?.body as { grant_type?: string }).grant_type, 'refresh_token', 'the refresh uses the refresh_token grant')

  await client.sendBiEvent(refreshed.accessToken)
  const bi = wix.requests.at(-1)!
  t.equal(bi.headers.authorization, refreshed.accessToken, 'the bi-event sends the raw access token as Authorization')
  t.same(bi.body, { eventName: 'APP_FINISHED_CONFIGURATION' }, 'the bi-event names APP_FINISHED_CONFIGURATION')
  t.equal(bi.status, 200, 'Wix accepts the bi-event')

  t.same(calls.map((c) => [c.endpoint, c.grant, c.status, c.outcome]), [
    ['oauth/access', 'authorization_code', 200, 'ok'],
    ['oauth/access', 'authorization_code', 400, 'final'],
    ['oauth/access', 'refresh_token', 200, 'ok'],
    ['bi-event', undefined, 200, 'ok'],
  ], 'every call is reported for metrics with its outcome')
  assertNoSecrets(t, again, logs, [wix.appSecret, code, tokens.accessToken, tokens.refreshToken])
})

t.test('server-side trouble is classified as retryable', async (t) => {
  const { url, wix, client, logs } = await setup(t)
  const code = await approve(url, wix)

  wix.failNext({ endpoint: 'oauth/access', status: 503 })
  const unavailable = await rejection(client.exchangeCode(code))
  t.equal(unavailable.code, 'WIX_UNAVAILABLE', 'a 503 is WIX_UNAVAILABLE')
  t.equal(unavailable.retryable, true, 'a 503 is retryable')

  wix.failNext({ endpoint: 'oauth/access', status: 429, retryAfterSeconds: 2 })
  const limited = await rejection(client.exchangeCode(code))
  t.equal(limited.code, 'WIX_RATE_LIMITED', 'a 429 is WIX_RATE_LIMITED')
  t.equal(limited.retryable, true, 'a 429 is retryable')
  t.equal(limited.retryAfterMs, 2000, 'Retry-After seconds become retryAfterMs')

  const tokens = await client.exchangeCode(code)
  t.ok(tokens.accessToken, 'the code still exchanges once Wix recovers')
  assertNoSecrets(t, [unavailable, limited], logs, [wix.appSecret, code, tokens.accessToken, tokens.refreshToken])
})

t.test('a slow Wix times out and an absent Wix is a network error', async (t) => {
  const { url, wix, client, logs } = await setup(t, { timeoutMs: 200 })
  const code = await approve(url, wix)
  wix.failNext({ endpoint: 'oauth/access', delayMs: 1_000 })
  const slow = await rejection(client.exchangeCode(code))
  t.equal(slow.code, 'WIX_TIMEOUT', 'an answer later than timeoutMs is WIX_TIMEOUT')
  t.equal(slow.retryable, true, 'a timeout is retryable')

  const port = await closedPort()
  const absent = createWixClient({ apiUrl: `http://127.0.0.1:${port}`, appId: wix.appId, appSecret: wix.appSecret })
  t.teardown(() => absent.close())
  const down = await rejection(absent.refreshAccessToken('OAUTH2.some-refresh-token'))
  t.equal(down.code, 'WIX_NETWORK', 'a refused connection is WIX_NETWORK')
  t.equal(down.retryable, true, 'a network error is retryable')
  assertNoSecrets(t, [slow, down], logs, [wix.appSecret, code, 'OAUTH2.some-refresh-token'])
})

t.test('a caller abort stops the call', async (t) => {
  const { url, wix, client } = await setup(t)
  const code = await approve(url, wix)
  wix.failNext({ endpoint: 'oauth/access', hang: true })
  const ac = new AbortController()
  setTimeout(() => ac.abort(), 100)
  const err = await rejection(client.exchangeCode(code, { signal: ac.signal }))
  t.equal(err.code, 'WIX_NETWORK', 'an aborted call is not blamed on Wix as a timeout')
  t.match(err.message, /aborted by the caller/, 'the message says the caller aborted')
  t.equal(err.retryable, true, 'an aborted call can be retried later')
})

t.test('secrets that Wix echoes back are scrubbed', async (t) => {
  const { url, wix, client, logs } = await setup(t)
  const code = await approve(url, wix)
  wix.failNext({ endpoint: 'oauth/access', status: 400, message: `bad code ${code} for secret ${wix.appSecret}` })
  const err = await rejection(client.exchangeCode(code))
  t.equal(err.message, 'Wix refused the code exchange (400): bad code [redacted] for secret [redacted]',
    'the echoed code and secret are replaced in the message')
  assertNoSecrets(t, err, logs, [wix.appSecret, code])

  wix.failNext({ endpoint: 'bi-event', status: 401, message: 'x'.repeat(500) })
  const long = await rejection(client.sendBiEvent('OAUTH2.whatever'))
  t.ok(long.message.length < 260, 'a long Wix message is truncated')
})

t.test('refusals are final and a 2xx without tokens is a bad response', async (t) => {
  const { url, wix, logs } = await setup(t)
  const code = await approve(url, wix)
  const wrongSecret = createWixClient({ apiUrl: url, appId: wix.appId, appSecret: 'not-the-secret', log: { warn: (obj, msg) => logs.push({ obj, msg }) } })
  t.teardown(() => wrongSecret.close())
  const creds = await rejection(wrongSecret.exchangeCode(code))
  t.equal(creds.code, 'WIX_CLIENT_REJECTED', 'wrong client credentials are told apart from a refused code')
  t.equal(creds.status, 401, 'wrong client credentials get a 401')
  t.equal(creds.retryable, false, 'and, with a code, never retried: a code Wix answered with a 4xx is not sent again')
  t.match(creds.message, /WIX_APP_SECRET/, 'and the message names what to fix')
  assertNoSecrets(t, creds, logs, ['not-the-secret', code])

  // A Wix-like server that answers 200 with half a token pair: the pair must not be trusted.
  const half = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-wix-request-id': 'req-half' })
    res.end(JSON.stringify({ access_token: 'OAUTH2.half-token' }))
  })
  await new Promise<void>((resolve) => half.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => half.close(resolve)))
  const halfClient = createWixClient({ apiUrl: `http://127.0.0.1:${(half.address() as { port: number }).port}`, appId: 'a', appSecret: 's3cr3t-value' })
  t.teardown(() => halfClient.close())
  const bad = await rejection(halfClient.exchangeCode('some-code-value'))
  t.equal(bad.code, 'WIX_BAD_RESPONSE', 'a 200 without a refresh token is WIX_BAD_RESPONSE')
  t.equal(bad.retryable, false, 'a bad response is not retried')
  t.equal(bad.wixRequestId, 'req-half', 'a bad response keeps the Wix request id')
  assertNoSecrets(t, bad, [], ['OAUTH2.half-token', 's3cr3t-value', 'some-code-value'])
})

t.test('Retry-After accepts seconds and HTTP dates', async (t) => {
  const now = Date.parse('2025-01-01T00:00:00Z')
  t.equal(parseRetryAfter('7', now), 7000, 'seconds become milliseconds')
  t.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:03 GMT', now), 3000, 'an HTTP date becomes the wait until it')
  t.equal(parseRetryAfter('soon', now), undefined, 'garbage is ignored')
})

function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close((err) => (err ? reject(err) : resolve(port)))
    })
  })
}
