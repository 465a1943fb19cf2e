import t from 'tap'
import { freshDatabase } from './support/database.ts'
import { effectsOf, testClock } from './support/engine.ts'
import { latestInstallationId, siteOwner } from './support/flow.ts'
import { startService, type Service } from './support/service.ts'

/** Wix misbehaving: every failure is retried or recorded, visible, and never a 5xx to the browser. */

const db = await freshDatabase()
t.teardown(db.drop)

const exchanges = (s: Service) =>
  s.wix.requests.filter((r) => (r.body as { grant_type?: string }).grant_type === 'authorization_code')

async function installTo(service: Service, until: (state: string) => boolean, timeoutMs = 8_000) {
  const owner = siteOwner(service)
  await owner.openAppUrl(`token-${Math.random()}`) // a new Wix instance each time
  const id = await latestInstallationId(service)
  const page = await owner.callback(await owner.approve())
  const installation = await service.app.engine.waitFor(id, (w) => until(w.statePath), timeoutMs)
  return { id, page, installation: installation!, owner }
}

t.test('503, then 200: the exchange is retried and the install completes', async (t) => {
  const service = await startService(t, { db })
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', status: 503, times: 2 })
  const { page, installation } = await installTo(service, (s) => s.startsWith('SetupIncomplete'))
  t.equal(page.status, 302, 'the browser is still sent on')
  t.equal(installation.state, 'SetupIncomplete', 'the installation completes')
  t.same(exchanges(service).map((r) => r.status), [503, 503, 200], 'after two retried 503s')
  const attempts = await db.sql`select outcome, error ->> 'code' as code, error ->> 'wixRequestId' as rid from wix_engine.job_attempts where workflow_id = ${installation.id} order by attempt`
  t.same(attempts.map((a) => [a.outcome, a.code]), [['retry', 'WIX_UNAVAILABLE'], ['retry', 'WIX_UNAVAILABLE'], ['ok', null]],
    'each failed attempt is recorded, and the success after them')
  t.ok(attempts[0]!.rid, "with Wix's request id")
  const shown = (await service.api('GET', `/api/installations/${installation.id}`)).json
  t.same(shown.effectAttempts.map((a: { effect: string; outcome: string }) => `${a.effect} ${a.outcome}`), ['exchangeCode retry', 'exchangeCode retry', 'exchangeCode ok'], 'the admin sees every attempt with its outcome')
  t.equal(shown.effectAttempts[0].wixRequestId, attempts[0]!.rid, "and Wix's request id of each failed call")
  t.equal(shown.effectAttempts[0].error.status, 503, 'and its status')
  t.match(shown.effectAttempts[2], { attempt: 3, outcome: 'ok', startedAt: String, error: null }, 'the run that succeeded after them is recorded with its start')
})

t.test('429 with Retry-After, then 200: retried no sooner than asked', async (t) => {
  const service = await startService(t, { db })
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', status: 429, retryAfterSeconds: 1 })
  const { installation } = await installTo(service, (s) => s.startsWith('SetupIncomplete'))
  t.equal(installation.state, 'SetupIncomplete', 'the installation completes')
  const [first, second] = exchanges(service)
  t.equal(first!.status, 429, 'the first exchange was rate-limited')
  t.ok(second!.at - first!.at >= 1_000, `the retry waited for Retry-After (${second!.at - first!.at} ms)`)
})

t.test('400 on the exchange: one call, then a failure the admin can read', async (t) => {
  const service = await startService(t, { db })
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', status: 400, message: 'invalid code' })
  const { page, installation } = await installTo(service, (s) => s === 'ExchangeFailed')
  t.equal(page.status, 200, 'the browser gets a page, not a 5xx')
  t.match(page.body, /could not be completed/, 'saying the installation could not be completed')
  t.equal(installation.state, 'ExchangeFailed', 'the installation failed')
  t.equal(exchanges(service).length, 1, 'after exactly one exchange: a refused code is never retried')
  const one = (await service.api('GET', `/api/installations/${installation.id}`)).json
  t.equal(one.failure.reason, 'exchange_refused', 'reason exchange_refused')
  t.match(one.failure.detail, /400/, 'the detail names the status')
  t.match(one.failure.detail, /Wix request id/, "and Wix's request id")
})

t.test('the code deadline: an exchange that cannot complete in 10 minutes fails as code_expired', async (t) => {
  const clock = testClock(new Date())
  const service = await startService(t, { db, now: clock.now, env: { REDIRECT_WAIT_MS: '200' } })
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', status: 503, times: 1_000 })
  const { id, page } = await installTo(service, () => false, 300)
  t.equal(page.status, 202, 'the browser gets a waiting page while Wix is down')
  t.match(page.body, /http-equiv="refresh"/, 'one that moves on by itself')
  for (let minute = 0; minute < 11; minute++) {
    clock.advance(60_000)
    await service.app.engine.runner.tick()
    await service.app.engine.runner.idle()
  }
  const one = (await service.api('GET', `/api/installations/${id}`)).json
  t.equal(one.state, 'CodeExpired', 'the installation ends in CodeExpired')
  t.equal(one.failure.reason, 'code_expired', 'with reason code_expired')
  const [pending] = await db.sql`select count(*)::int as n from wix_engine.jobs where workflow_id = ${id} and status in ('pending', 'running')`
  t.equal(pending!.n + (await effectsOf(db.sql, id)).length, 0, 'and no retry is left waiting')
  const continued = await siteOwner(service).browser.get(`${service.url}/wix/redirect/continue`)
  t.equal(continued.status, 400, 'the waiting page needs its own browser’s flow cookie')
})

t.test('a slow exchange: the waiting page completes the redirect once ready', async (t) => {
  const service = await startService(t, { db, env: { REDIRECT_WAIT_MS: '200' } })
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', delayMs: 600 })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const page = await owner.callback(await owner.approve())
  t.equal(page.status, 202, 'not ready within the wait: a waiting page')
  let next = page
  for (let refreshes = 0; refreshes < 20 && next.status === 202; refreshes++) {
    next = await owner.browser.get(`${service.url}/wix/redirect/continue`)
  }
  t.equal(next.status, 302, 'the page’s refresh gets the redirect once the exchange is done')
  t.match(next.location, /\?instanceId=/, 'to the post-install page')
})

t.test('the bi-event failing: retried; a rejected refresh token asks for a reinstall', async (t) => {
  const service = await startService(t, { db })
  const { installation } = await installTo(service, (s) => s === 'SetupIncomplete.waiting')
  service.wix.failNext({ endpoint: 'bi-event', status: 500 })
  const finish = await service.api('POST', `/api/installations/${installation.id}/finish`)
  t.equal(finish.status, 200, 'finish succeeds after a retried 500')
  t.equal(finish.json.state, 'Finished', 'Finished')

  const second = await installTo(service, (s) => s === 'SetupIncomplete.waiting')
  const refreshToken = [...service.wix.refreshTokens].find(([, v]) => v.instanceId === second.installation.context.instanceId)![0]
  service.wix.revokeRefreshToken(refreshToken)
  // Wix refuses the client-credentials fallback too (the app is gone from the site).
  service.wix.failNext({ endpoint: 'oauth2/token', status: 400, message: 'The app is not installed on this instance' })
  const rejected = await service.api('POST', `/api/installations/${second.installation.id}/finish`)
  t.equal(rejected.status, 409, 'finish answers 409 once the installation needs a reinstall')
  const one = (await service.api('GET', `/api/installations/${second.installation.id}`)).json
  t.equal(one.state, 'ReinstallRequired', 'the installation is ReinstallRequired')
  t.equal(one.failure.reason, 'reinstall_required', 'with reason reinstall_required')
})
