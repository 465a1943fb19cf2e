import t from 'tap'
import postgres from 'postgres'
import { request } from 'undici'
import { createTokenCipher } from '../src/crypto/token-cipher.ts'
import { findInstallation } from '../src/installation/queries.ts'
import { createTokenVault } from '../src/installation/token-vault.ts'
import { freshDatabase } from './support/database.ts'
import { testClock } from './support/engine.ts'
import { siteOwner } from './support/flow.ts'
import { startService, type Service } from './support/service.ts'

/** The admin API: authentication on every route, filters, pagination, tokens, retry and cancel. */

const db = await freshDatabase()
t.teardown(db.drop)

async function install(service: Service, o: { finish?: boolean } = {}) {
  const owner = siteOwner(service)
  await owner.openAppUrl(`token-${Math.random()}`)
  const id = await owner.installationId()
  // The browser follows its waiting page until it is sent on, as a browser does (a service whose
  // clock the test holds still moves the installation on for no browser that stays away).
  let page = await owner.callback(await owner.approve())
  for (let looks = 0; looks < 600 && page.status === 202; looks++) page = await owner.browser.get(`${service.url}/wix/redirect/continue`)
  // Generous: it returns as soon as the state is reached, and a loaded machine may take seconds.
  const reached = await service.app.engine.waitFor(id, (w) => w.statePath === 'SetupIncomplete.waiting', 30_000)
  if (reached?.statePath !== 'SetupIncomplete.waiting') throw new Error(`install stopped at ${reached?.statePath}`)
  if (o.finish) await service.api('POST', `/api/installations/${id}/finish`)
  return (await service.api('GET', `/api/installations/${id}`)).json
}

t.test('every /api route demands the admin token', async (t) => {
  const service = await startService(t, { db })
  // Enumerated from the app itself, so a future route cannot skip authentication.
  const routes = service.app.routeList
    .filter((r) => r.url.startsWith('/api'))
    .map((r) => [r.method, r.url.replace(':id', 'some-id')] as const)
  t.ok(routes.length >= 7, `found ${routes.length} /api routes`)
  for (const [method, path] of routes) {
    for (const [label, header] of [['no token', undefined], ['a wrong token', 'Bearer not-the-admin-token-0123456789'], ['a malformed header', 'Basic abc']] as const) {
      const res = await request(`${service.url}${path}`, { method, headers: header ? { authorization: header } : {} })
      const body = (await res.body.json()) as { code: string }
      t.equal(res.statusCode, 401, `${method} ${path} with ${label}: 401`)
      t.equal(body.code, 'UNAUTHORIZED', `${method} ${path} with ${label}: UNAUTHORIZED`)
    }
  }
})

t.test('list: filters combine; the cursor visits each installation exactly once while others arrive', async (t) => {
  const service = await startService(t, { db: await freshDatabaseFor(t) })
  const finished = await install(service, { finish: true })
  const waiting = await install(service)
  for (let i = 0; i < 20; i++) await service.app.installFlow.begin('app-url', `t${i}`)
  await service.api('POST', `/api/installations/${(await service.app.installFlow.begin('platform')).installation.id}/cancel`)

  const list = async (query: string) => (await service.api('GET', `/api/installations?${query}`)).json
  t.same((await list('state=Finished')).items.map((i: { id: string }) => i.id), [finished.id], 'state=Finished finds the finished one')
  t.same((await list(`state=SetupIncomplete&instanceId=${waiting.instanceId}`)).items.map((i: { id: string }) => i.id), [waiting.id], 'state and instanceId combine')
  t.equal((await list(`state=Finished&instanceId=${waiting.instanceId}`)).items.length, 0, 'contradictory filters find nothing')
  t.equal((await list('reason=cancelled')).items.length, 1, 'reason=cancelled finds the cancelled one')
  t.equal((await list('state=Authorizing')).items.length, 20, 'state=Authorizing finds the 20 waiting at consent')
  const future = new Date(Date.now() + 3_600_000).toISOString()
  t.equal((await list(`createdFrom=${future}`)).items.length, 0, 'createdFrom in the future finds nothing')
  t.equal((await list(`updatedTo=${future}&state=Authorizing`)).items.length, 20, 'updatedTo combines with state')
  const all = await list('limit=200')
  const updated = all.items.map((i: { updatedAt: string }) => i.updatedAt)
  t.same(updated, [...updated].sort().reverse(), 'newest-updated first')

  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const page = await list(`limit=4${cursor ? `&cursor=${cursor}` : ''}`)
    seen.push(...page.items.map((i: { id: string }) => i.id))
    cursor = page.nextCursor
    pages++
    await service.app.installFlow.begin('app-url', `late-${pages}`) // arrives mid-walk
  } while (cursor)
  t.equal(seen.length, all.items.length, `${pages} pages visited ${seen.length} installations`)
  t.equal(new Set(seen).size, seen.length, 'none twice')
  t.same(new Set(seen), new Set(all.items.map((i: { id: string }) => i.id)), 'and none missed')

  const bad = await service.api('GET', '/api/installations?cursor=garbage')
  t.equal(bad.status, 400, 'a forged cursor is a 400')
  t.equal(bad.json.code, 'INVALID_CURSOR', 'named INVALID_CURSOR')
  t.equal((await service.api('GET', '/api/installations?limit=201')).status, 400, 'limit is capped at 200')
})

t.test('list with a created-at window: newest-created first, each match once across pages; cursors keep their order', async (t) => {
  const clock = testClock(new Date('2026-03-01T00:00:00Z'))
  const service = await startService(t, { db: await freshDatabaseFor(t), now: clock.now })
  // 14 installations, two per minute (same created_at: the id breaks the tie).
  const created: { id: string; createdAt: Date }[] = []
  for (let minute = 0; minute < 7; minute++) {
    for (let k = 0; k < 2; k++) {
      const { installation } = await service.app.installFlow.begin('app-url', `w${minute}-${k}`)
      created.push({ id: installation.id, createdAt: installation.createdAt })
    }
    clock.advance(60_000)
  }
  // Update the oldest ones last, so newest-updated and newest-created orders differ.
  for (const { id } of created.slice(0, 6)) {
    clock.advance(1_000)
    t.equal((await service.api('POST', `/api/installations/${id}/cancel`)).status, 200, 'cancelled, updated later')
  }
  const list = async (query: string) => service.api('GET', `/api/installations?${query}`)
  const ids = (page: { json: { items: { id: string }[] } }) => page.json.items.map((i) => i.id)

  t.same(ids(await list('limit=6')).sort(), created.slice(0, 6).map((i) => i.id).sort(), 'without a created filter: newest-updated first (the cancelled ones)')

  // The window: minutes 1 to 5, ten installations.
  const from = created[2]!.createdAt.toISOString()
  const to = created[12]!.createdAt.toISOString()
  const expected = created
    .slice(2, 12)
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))
    .map((i) => i.id)
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const page = await list(`createdFrom=${from}&createdTo=${to}&limit=3${cursor ? `&cursor=${cursor}` : ''}`)
    t.equal(page.status, 200, `page ${pages + 1}`)
    seen.push(...ids(page))
    cursor = page.json.nextCursor
    pages++
    await service.app.installFlow.begin('app-url', `late-${pages}`) // created now, outside the window
  } while (cursor && pages < 10)
  t.equal(pages, 4, 'ten matches in pages of three: four pages')
  t.same(seen, expected, 'every installation in the window exactly once, newest-created first (ties by id desc)')
  const createdAts = (await list(`createdTo=${to}&limit=200`)).json.items.map((i: { createdAt: string }) => i.createdAt)
  t.same(createdAts, [...createdAts].sort().reverse(), 'createdTo alone is newest-created first too')

  // Filters combine with the created order.
  t.same(ids(await list(`createdFrom=${from}&createdTo=${to}&state=Cancelled`)), expected.filter((id) => created.slice(0, 6).some((c) => c.id === id)), 'state + created window')

  // A cursor belongs to its order: adding or dropping the created filters between pages is a 400.
  const updatedCursor = (await list('limit=2')).json.nextCursor as string
  const createdCursor = (await list(`createdFrom=${from}&limit=2`)).json.nextCursor as string
  t.ok(updatedCursor && createdCursor, 'both orders issue cursors')
  for (const [label, query] of [
    ['an unfiltered cursor with createdFrom', `createdFrom=${from}&cursor=${updatedCursor}`],
    ['an unfiltered cursor with createdTo and state', `createdTo=${to}&state=Authorizing&cursor=${updatedCursor}`],
    ['a created-window cursor without the window', `cursor=${createdCursor}`],
    ['a created-window cursor with only an updated window', `updatedFrom=${from}&cursor=${createdCursor}`],
  ] as const) {
    const res = await list(query)
    t.equal(res.status, 400, `${label}: 400`)
    t.equal(res.json.code, 'INVALID_CURSOR', `${label}: INVALID_CURSOR`)
  }
  // A cursor past the window's end (the query drops it) starts the window from its first row.
  t.same(ids(await list(`createdFrom=${from}&createdTo=${to}&limit=3&cursor=${createdCursor}`)), expected.slice(0, 3), 'a created cursor with another created window is fine: same order')
  const updatedTo = new Date(created[13]!.createdAt.getTime() + 60_000).toISOString() // before every cancel and late arrival
  t.same(ids(await list(`updatedTo=${updatedTo}&cursor=${updatedCursor}`)), ids(await list(`updatedTo=${updatedTo}`)), 'so is an updated cursor past an updatedTo')
  t.equal(ids(await list(`updatedTo=${updatedTo}`)).length, 8, 'which holds the eight never updated')

  // A cursor from before cursors named their order, [iso, id], is of the updated order.
  const updated = ids(await list('limit=200'))
  const last = (await list('limit=2')).json.items[1] as { id: string; updatedAt: string }
  const legacy = Buffer.from(JSON.stringify([last.updatedAt, last.id])).toString('base64url')
  const rest = await list(`limit=200&cursor=${legacy}`)
  t.equal(rest.status, 200, 'an old two-element cursor still pages the updated order')
  t.same(ids(rest), updated.slice(2), 'from where it ended')
  t.equal((await list(`createdFrom=${from}&cursor=${legacy}`)).json.code, 'INVALID_CURSOR', 'and is no cursor of the created order')
  for (const forged of [['x', last.updatedAt, last.id], ['c', last.updatedAt, 'not-a-uuid'], ['c', 42, last.id], { a: 1 }, ['c', last.updatedAt, last.id, 'extra']]) {
    const res = await list(`createdFrom=${from}&cursor=${Buffer.from(JSON.stringify(forged)).toString('base64url')}`)
    t.equal(res.status, 400, `forged ${JSON.stringify(forged)}: 400`)
  }
})

t.test('access tokens: 100 concurrent calls share one refresh', async (t) => {
  const clock = testClock(new Date())
  const service = await startService(t, { db, now: clock.now })
  const installation = await install(service)
  const path = `/api/installations/${installation.id}/access-token`
  const refreshes = () => service.wix.requests.filter((r) => (r.body as { grant_type?: string }).grant_type === 'refresh_token').length

  const cached = await service.api('POST', path)
  t.equal(cached.status, 200, 'a token right after install')
  t.ok(service.wix.isValidAccessToken(cached.json.accessToken), 'one Wix accepts')
  t.equal(refreshes(), 0, 'reused from the exchange while comfortably alive')
  t.equal(cached.headers['cache-control'], 'no-store', 'never cached by a proxy')

  clock.advance(4.5 * 60_000) // less than a minute left: not comfortably alive
  const answers = await Promise.all(Array.from({ length: 100 }, () => service.api('POST', path)))
  t.ok(answers.every((a) => a.status === 200), '100 concurrent calls all get a token')
  t.equal(refreshes(), 1, 'exactly one refresh reached Wix')
  t.equal(new Set(answers.map((a) => a.json.accessToken)).size, 1, 'and they share its token')
  t.ok(new Date(answers[0]!.json.expiresAt).getTime() - clock.now().getTime() >= 4 * 60_000, 'which has minutes left')
})

t.test('a refresh token Wix rejects, and a client-credentials token too: 409 and the installation marked for reinstall', async (t) => {
  const clock = testClock(new Date())
  const service = await startService(t, { db, now: clock.now })
  const installation = await install(service, { finish: true })
  for (const token of service.wix.refreshTokens.keys()) service.wix.revokeRefreshToken(token)
  service.wix.failNext({ endpoint: 'oauth2/token', status: 400, message: 'The app is not installed on this instance' })
  clock.advance(10 * 60_000)
  const res = await service.api('POST', `/api/installations/${installation.id}/access-token`)
  t.equal(res.status, 409, '409')
  t.equal(res.json.code, 'REINSTALL_REQUIRED', 'named REINSTALL_REQUIRED')
  const after = (await service.api('GET', `/api/installations/${installation.id}`)).json
  t.equal(after.state, 'ReinstallRequired', 'the installation needs a reinstall')
  t.equal(after.failure.reason, 'reinstall_required', 'and says why')
  t.equal((await service.api('POST', `/api/installations/${installation.id}/access-token`)).json.code, 'REINSTALL_REQUIRED', 'later calls say so without asking Wix')
})

t.test('retry and cancel, where the machine allows them', async (t) => {
  const clock = testClock(new Date())
  const service = await startService(t, { db, now: clock.now, env: { REDIRECT_WAIT_MS: '100' } })

  const inFlight = await service.app.installFlow.begin('app-url', 'to-cancel')
  const cancelled = await service.api('POST', `/api/installations/${inFlight.installation.id}/cancel`)
  t.equal(cancelled.status, 200, 'an installation at the consent screen can be cancelled')
  t.equal(cancelled.json.failure.reason, 'cancelled', 'with reason cancelled')
  const again = await service.api('POST', `/api/installations/${inFlight.installation.id}/cancel`)
  t.equal(again.status, 409, 'cancelling twice is a 409')
  t.match(again.json.message, /Cancelled/, 'that says what state it is in')

  const done = await install(service)
  t.equal((await service.api('POST', `/api/installations/${done.id}/cancel`)).status, 409, 'an installed one cannot be cancelled')
  t.equal((await service.api('POST', `/api/installations/${done.id}/retry`)).status, 409, 'nor retried when nothing failed')

  // Wix refuses the bi-event for good: the installation waits with lastError; retry re-runs it.
  const failing = await install(service)
  service.wix.failNext({ endpoint: 'bi-event', status: 400, message: 'not now' })
  const refused = await service.api('POST', `/api/installations/${failing.id}/finish`)
  t.equal(refused.status, 502, 'finish reports that Wix refused the bi-event')
  t.equal(refused.json.code, 'WIX_FINISH_FAILED', 'named WIX_FINISH_FAILED')
  t.equal(refused.json.installation.lastError.status, 400, 'with the error recorded on the installation')
  const retried = await service.api('POST', `/api/installations/${failing.id}/retry`)
  t.equal(retried.status, 200, 'retry re-runs the bi-event')
  const finished = await service.app.engine.waitFor(failing.id, (w) => w.state === 'Finished', 5_000)
  t.equal(finished?.state, 'Finished', 'which Wix now accepts')
})

t.test('stats and admin responses carry no secret', async (t) => {
  const service = await startService(t, { db: await freshDatabaseFor(t) })
  const installation = await install(service, { finish: true })
  const stats = await service.api('GET', '/api/stats')
  t.equal(stats.status, 200, 'stats answer')
  t.equal(stats.json.installations.Finished, 1, 'counting installations by state')
  t.same(stats.json.jobs, { waiting: 0, running: 0, oldestWaitingSeconds: null, dead: {} }, 'and the job queue, with no dead job')
  const responses = [
    stats.text,
    (await service.api('GET', '/api/installations')).text,
    (await service.api('GET', `/api/installations/${installation.id}`)).text,
    service.logs.join('\n'),
  ].join('\n')
  const secrets = [
    service.wix.appSecret,
    ...[...service.wix.issuedCodes.keys()],
    ...[...service.wix.refreshTokens.keys()],
    ...service.wix.requests.map((r) => String(r.headers.authorization ?? '')).filter(Boolean),
  ]
  t.ok(secrets.length >= 4, `checked ${secrets.length} secrets`)
  for (const secret of secrets) t.notOk(responses.includes(secret), 'no secret in an admin response or a log line')
})

t.test('an installation by its instanceId, as the app\'s backend finishes it: one statement', async (t) => {
  const own = await freshDatabaseFor(t)
  const service = await startService(t, { db: own })
  const installation = await install(service)
  const other = await install(service)
  // Every statement the lookup sends, seen by the driver (once connected: a connection's first
  // statement is preceded by the driver's own look at the array types).
  const statements: string[] = []
  const counted = postgres(own.url, { max: 1, onnotice: () => {}, debug: (_c, q) => statements.push(q) })
  t.teardown(() => counted.end())
  await counted`select 1`
  const find = async (ref: string) => {
    statements.length = 0
    const row = await findInstallation(counted, ref)
    return { id: row?.id, statements: statements.length }
  }
  t.same(await find(installation.instanceId), { id: installation.id, statements: 1 }, 'by its instanceId: found by the lookup by id, not looked up again')
  t.same(await find(other.id), { id: other.id, statements: 1 }, 'by its id: one statement')
  t.same(await find(installation.instanceId.toUpperCase()), { id: installation.id, statements: 2 },
    'by its instanceId in upper case: the key is matched as Wix writes it, by the list')
  t.same(await find('00000000-0000-4000-8000-000000000000'), { id: undefined, statements: 3 }, 'an unknown GUID: by id, by key, as a claim')
  const finished = await service.api('POST', `/api/installations/${installation.instanceId}/finish`)
  t.same([finished.status, finished.json.id, finished.json.state], [200, installation.id, 'Finished'], 'and the finish by instanceId finishes it')
})

async function freshDatabaseFor(t: { teardown(fn: () => unknown): void }) {
  const own = await freshDatabase()
  t.teardown(own.drop)
  return own
}

t.test('the finish mints a token for its bi-event alone: stored only when Wix answers with another refresh token', async (t) => {
  const service = await startService(t, { db })
  const { sql, wix, now, config } = service.app
  const installation = await install(service)
  const stored = async () => (await sql<{ refresh_token: string; access_token: string; updated_at: Date }[]>`
    select refresh_token, access_token, updated_at from wix_install.instance_tokens where instance_id = ${installation.instanceId}`)[0]
  const grants = () => service.wix.requests.map((r) => (r.body as { grant_type?: string }).grant_type).filter(Boolean)
  const before = await stored()
  const finished = await service.api('POST', `/api/installations/${installation.id}/finish`)
  t.equal(finished.json.state, 'Finished', 'the installation is Finished')
  t.same(grants().slice(-1), ['refresh_token'], 'after a refresh that minted the bi-event’s token')
  t.same(await stored(), before, 'and the stored tokens were not written again: Wix answered with the same refresh token')
  const cached = await service.api('POST', `/api/installations/${installation.id}/access-token`)
  t.equal(cached.status, 200, 'the access-token route still answers')
  t.ok(service.wix.isValidAccessToken(cached.json.accessToken), 'with a valid token')

  // A Wix that answers a refresh with a new refresh token (Wix's do not rotate; docs/design.md asks to keep whatever comes back).
  const cipher = createTokenCipher(config.tokenKeys)
  const rotating = createTokenVault({
    sql, cipher, now,
    wix: {
      refreshAccessToken: async (token, o) => ({ ...(await wix.refreshAccessToken(token, o)), refreshToken: `rotated-${token}` }),
      clientCredentials: (instanceId, o) => wix.clientCredentials(instanceId, o),
    },
  })
  const fresh = await rotating.accessToken(installation.instanceId, { fresh: true })
  t.ok(service.wix.isValidAccessToken(fresh.accessToken), 'a fresh token for one call')
  const after = await stored()
  t.equal(cipher.decrypt(after!.refresh_token), `rotated-${cipher.decrypt(before!.refresh_token)}`, 'the new refresh token is stored')
  t.equal(cipher.decrypt(after!.access_token), fresh.accessToken, 'with the access token minted beside it')
})
