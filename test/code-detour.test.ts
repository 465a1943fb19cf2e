import t, { type Test } from 'tap'
import { request } from 'undici'
import { transition } from 'xstate'
import { DETOUR_WINDOW_MS, installationMachine, INSTALLATION_MACHINE_VERSION, MAX_DETOURS } from '../machines/installation.ts'
import { restore } from '../src/engine/snapshot.ts'
import { replayInstallation } from '../src/inspector/replay.ts'
import { freshDatabase } from './support/database.ts'
import { testClock } from './support/engine.ts'
import type { Page } from './support/browser.ts'
import { siteOwner } from './support/flow.ts'
import { ADMIN_TOKEN, startService, type Service } from './support/service.ts'

/**
 * A code spent by a run that never heard Wix's answer: the waiting browser is sent back through
 * Wix's installer for a new code, once. Wix "loses the answer" here by cutting the connection
 * after spending the code; test/crash-recovery.test.ts plays it with a killed process.
 */

const db = await freshDatabase()
t.teardown(db.drop)

const exchangesAtWix = (service: Service) => service.wix.requests.filter((r) =>
  r.endpoint === 'oauth/access' && (r.body as { grant_type?: string }).grant_type === 'authorization_code')
const codesAtWix = (service: Service) => [...new Set(exchangesAtWix(service).map((r) => (r.body as { code: string }).code))]
const lostAnswer = { endpoint: 'oauth/access', grant: 'authorization_code', loseAnswer: 'cut' } as const

/** A browser that keeps the waiting page open: it follows every redirect through Wix, approving. */
async function waitingBrowser(service: Service, owner: ReturnType<typeof siteOwner>, first: Page, onSentBack = () => {}) {
  let page = first
  const seen: string[] = []
  for (let steps = 0; steps < 200; steps++) {
    if (page.status === 202) {
      seen.push(/One more moment/.test(page.body) ? 'one-more-moment' : 'waiting')
      page = await owner.browser.get(`${service.url}/wix/redirect/continue`)
    } else if (page.status === 302 && page.location!.startsWith(`${service.fake.url}/installer/install`)) {
      seen.push('sent-back')
      onSentBack()
      const approve = page.location!.replace('/installer/install', '/installer/approve')
      const back = await owner.browser.get(approve)
      page = await owner.callback(back.location!)
    } else break
  }
  return { page, seen }
}

t.test("a code spent by a run that never heard Wix's answer: the waiting browser gets a new one", async (t) => {
  const service = await startService(t, { db, env: { REDIRECT_WAIT_MS: '5000' } })
  const owner = siteOwner(service)
  await owner.openAppUrl('detour-token')
  const id = await owner.installationId()
  service.wix.failNext(lostAnswer)
  const back = await owner.approve()
  const instanceId = back.searchParams.get('instanceId')
  const first = await owner.callback(back)
  t.equal(first.status, 302, 'the waiting browser is redirected')
  const installer = new URL(first.location!)
  t.equal(`${installer.origin}${installer.pathname}`, `${service.fake.url}/installer/install`, "back to Wix's installer")
  t.equal(installer.searchParams.get('token'), 'detour-token', "with the App URL's token the installation kept")
  t.not(installer.searchParams.get('state'), owner.state, 'and a fresh state')
  t.match(String(first.headers['set-cookie']), new RegExp(`${owner.stateCookie}=`), 'bound to this browser by its state cookie')

  const { page } = await waitingBrowser(service, owner, first)
  t.equal(page.status, 302, 'the browser is sent on')
  t.equal(page.location, `${service.url}/?instanceId=${instanceId}`, 'to the post-install page of the same site')

  const one = (await service.api('GET', `/api/installations/${id}`)).json
  t.equal(one.state, 'SetupIncomplete', 'the same installation completed')
  t.equal(one.instanceId, instanceId, 'for the same instance')
  const rows = await db.sql`select id from wix_engine.workflows where key = ${instanceId}`
  t.equal(rows.length, 1, 'one installation row')
  const codes = codesAtWix(service)
  t.equal(codes.length, 2, 'two codes reached Wix')
  t.same(codes.map((c) => exchangesAtWix(service).filter((r) => (r.body as { code: string }).code === c && r.status === 200).length), [0, 1],
    'the first was spent with its answer lost (then refused), the second exchanged once')
  t.equal(service.wix.issuedCodes.get(codes[0]!)!.used, true, 'Wix had spent the first')
  const history = (await service.api('GET', `/api/installations/${id}`)).json.history as { event: string; from: string; to: string; data: { note?: string } }[]
  const detour = history.find((h) => h.event === 'BROWSER_SENT_BACK')
  t.ok(detour, 'the detour is in its history')
  t.match(detour?.data.note, /process that died had spent it/, 'in words')
  t.same(history.map((h) => h.to).filter((s) => s === 'Authorizing').length, 3, 'Authorizing entered for the consent, the spent code and the detour')
  const [tokens] = await db.sql`select count(*)::int as n from wix_install.instance_tokens where instance_id = ${instanceId}`
  t.equal(tokens!.n, 1, 'one set of tokens is stored')
  t.same((await replayInstallation(db.sql, id))!.steps.at(-1)!.to, 'SetupIncomplete.waiting', 'and its history replays to where it is')
})

t.test('while the new code is exchanged, the waiting page says one more moment, never an error', async (t) => {
  const service = await startService(t, { db, env: { REDIRECT_WAIT_MS: '200' } })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  service.wix.failNext(lostAnswer)
  const first = await owner.callback(await owner.approve())
  // Wix takes its time over the new code: the browser comes back to a waiting page.
  const { page, seen } = await waitingBrowser(service, owner, first,
    () => service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', delayMs: 1_500 }))
  t.ok(seen.includes('sent-back'), 'the browser was sent back to Wix')
  t.ok(seen.slice(seen.indexOf('sent-back')).includes('one-more-moment'), 'and then told it is one more moment')
  t.notOk(seen.slice(seen.indexOf('sent-back')).includes('waiting'), 'with no other waiting page')
  t.equal(page.status, 302, 'until it is sent on')
})

t.test("a detour's new code spent by a second dead run: sent back again, and the install completes", async (t) => {
  const service = await startService(t, { db, env: { REDIRECT_WAIT_MS: '5000' } })
  const owner = siteOwner(service)
  await owner.openAppUrl('again-token')
  const id = await owner.installationId()
  service.wix.failNext(lostAnswer)
  const first = await owner.callback(await owner.approve())
  let lost = 0
  // The first detour's new code has its answer lost too; the second detour's is answered.
  const { page, seen } = await waitingBrowser(service, owner, first, () => lost++ === 0 && service.wix.failNext(lostAnswer))
  t.same(seen.filter((s) => s === 'sent-back'), ['sent-back', 'sent-back'], 'the browser was sent back twice')
  t.equal(page.status, 302, 'and then sent on')
  const one = (await service.api('GET', `/api/installations/${id}`)).json
  t.equal(one.state, 'SetupIncomplete', 'the same installation completed')
  t.equal(codesAtWix(service).length, 3, 'three codes reached Wix')
  t.equal(one.history.filter((h: { event: string }) => h.event === 'BROWSER_SENT_BACK').length, 2, 'both detours in its history')
})

t.test(`a spent code past MAX_DETOURS (${MAX_DETOURS}) fails as a refused code would`, async (t) => {
  const service = await startService(t, { db, env: { REDIRECT_WAIT_MS: '5000' } })
  const owner = siteOwner(service)
  await owner.openAppUrl('twice-token')
  const id = await owner.installationId()
  service.wix.failNext(lostAnswer)
  const first = await owner.callback(await owner.approve())
  // Every new code's answer is lost too.
  const { page, seen } = await waitingBrowser(service, owner, first, () => service.wix.failNext(lostAnswer))
  t.equal(seen.filter((s) => s === 'sent-back').length, MAX_DETOURS, `the browser was sent back ${MAX_DETOURS} times`)
  t.equal(page.status, 200, 'then shown a page')
  t.match(page.body, /could not be completed/, 'saying the installation could not be completed')
  const one = (await service.api('GET', `/api/installations/${id}`)).json
  t.equal(one.state, 'ExchangeFailed', 'the installation failed')
  t.equal(one.failure.reason, 'exchange_refused', 'as exchange_refused')
  t.match(one.failure.detail, /code spent by a process that died/, 'the detail says the code was spent by a process that died')
  t.equal(codesAtWix(service).length, MAX_DETOURS + 1, 'after a code for each try')
})

/** An install whose exchange Wix answers with `failures` in turn: it ends refused, with no detour. */
async function refusedWithoutDetour(t: Test, failures: number[]) {
  const service = await startService(t, { db, env: { REDIRECT_WAIT_MS: '5000' } })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const id = await owner.installationId()
  for (const status of failures) service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', status })
  const page = await owner.callback(await owner.approve())
  t.equal(page.status, 200, 'the browser is shown a page, not sent back to Wix')
  const one = (await service.api('GET', `/api/installations/${id}`)).json
  t.equal(one.state, 'ExchangeFailed', 'the installation failed')
  t.notMatch(one.failure.detail, /spent by a process that died/, 'a refusal, not a spent code')
  return { service, one }
}

t.test('a code Wix refused the first time it saw it: no detour', async (t) => {
  const { service, one } = await refusedWithoutDetour(t, [400])
  t.notOk(one.history.some((h: { event: string }) => h.event === 'BROWSER_SENT_BACK'), 'and no detour in its history')
  t.equal(codesAtWix(service).length, 1, 'one code reached Wix')
})

t.test('a code refused on a retry after an answered failure: no detour', async (t) => {
  // Wix answered the first run (503: not done); the second is refused: the code itself is bad.
  await refusedWithoutDetour(t, [503, 400])
})

t.test('no browser waiting: the spent code fails once the detour window passes', async (t) => {
  const clock = testClock(new Date())
  const service = await startService(t, { db, now: clock.now, env: { REDIRECT_WAIT_MS: '200' } })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const id = await owner.installationId()
  service.wix.failNext(lostAnswer)
  const page = await owner.callback(await owner.approve())
  t.equal(page.status, 202, 'the browser gets the waiting page, and leaves')
  // The retry after the cut connection is due a backoff later: move the clock to it.
  await service.app.engine.waitFor(id, (w) => w.state !== 'CodeReceived' || false, 100).catch(() => undefined)
  for (let i = 0; i < 10 && (await service.app.engine.get(id))!.state === 'CodeReceived'; i++) {
    clock.advance(2_000)
    await service.app.engine.runner.tick()
    await service.app.engine.runner.idle()
  }
  let one = (await service.api('GET', `/api/installations/${id}`)).json
  t.equal(one.state, 'Authorizing', 'the spent code waits for its browser')
  clock.advance(DETOUR_WINDOW_MS + 1_000)
  await service.app.engine.runner.tick()
  await service.app.engine.runner.idle()
  one = (await service.api('GET', `/api/installations/${id}`)).json
  t.equal(one.state, 'ExchangeFailed', 'no browser came: the installation failed')
  t.equal(one.failure.reason, 'exchange_refused', 'as exchange_refused')
  t.match(one.failure.detail, /code spent by a process that died/, 'the detail says the code was spent by a process that died')
  t.match(one.failure.detail, /No browser was waiting/, 'and that no browser waited for a new one')
  t.equal(codesAtWix(service).length, 1, 'no second code was asked for')
  t.same((await replayInstallation(db.sql, id))!.steps.at(-1)!.snapshot.context.failure, one.failure, 'its history replays to the same failure')

  // The admin console offers the link to send the site owner.
  const signIn = await request(`${service.url}/console/sign-in`, {
    method: 'POST', body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: service.url, accept: 'text/html' },
  })
  await signIn.body.dump()
  const cookie = [signIn.headers['set-cookie'] ?? []].flat().map((c) => c.split(';')[0]).join('; ')
  const consolePage = await request(`${service.url}/console/installations/${id}`, { headers: { cookie, accept: 'text/html' } })
  const html = await consolePage.body.text()
  t.match(html, /spent by a process that died/, 'the console shows why it failed')
  t.match(html, new RegExp(`Re-install link</dt><dd><a href="${service.url}/wix/install">`), "and the owner's re-install link")
})

t.test('a snapshot stored before detours existed (same machine version) loads and takes the detour', async (t) => {
  t.equal(INSTALLATION_MACHINE_VERSION, 2, 'the version is unchanged: the new fields are optional, old snapshots mean what they meant')
  // CodeReceived as version 2 stored it before this change: no detours, detourPending or appUrlToken.
  const stored = {
    value: 'CodeReceived',
    status: 'active' as const,
    context: {
      id: '00000000-0000-4000-8000-000000000002', origin: 'app-url', stateHash: 'h', closeWindow: false, autoFinish: false,
      consentTimeoutMs: 1_800_000, codeTtlMs: 600_000, browserReturnTimeoutMs: 900_000,
      instanceId: null, claimedInstanceId: 'claimed', originInstanceId: null, failure: null, lastError: null,
    },
  }
  const spent = { type: 'xstate.error.actor.exchangeCode', error: { code: 'CODE_SPENT', message: 'spent', retryable: false } }
  const [detoured, actions] = transition(installationMachine, restore(installationMachine, stored), spent as never)
  t.equal(detoured.value, 'Authorizing', 'its spent code sends it back to Authorizing')
  t.equal(detoured.context.detours, 1, 'counted as its one detour')
  const timer = actions.find((a) => a.type === 'xstate.raise' && (a.params as { delay?: number }).delay !== undefined)
  t.equal((timer?.params as { delay?: number }).delay, DETOUR_WINDOW_MS, 'waiting for its browser for the detour window')
  const [back] = transition(installationMachine, detoured, { type: 'BROWSER_SENT_BACK', stateHash: 'h2', note: 'n' })
  const [again] = transition(installationMachine, back, { type: 'CALLBACK', code: 'c2', instanceId: 'claimed', stateHash: 'h2' })
  t.equal(again.value, 'CodeReceived', 'and a new code, under the fresh state, is exchanged')
  let last = again
  for (let detour = 2; detour <= MAX_DETOURS; detour++) {
    const [sentBack] = transition(installationMachine, last, spent as never)
    t.equal(sentBack.value, 'Authorizing', `spent code ${detour} sends it back too`)
    const [returned] = transition(installationMachine, sentBack, { type: 'BROWSER_SENT_BACK', stateHash: `h${detour + 1}`, note: 'n' })
    ;[last] = transition(installationMachine, returned, { type: 'CALLBACK', code: `c${detour + 1}`, instanceId: 'claimed', stateHash: `h${detour + 1}` })
  }
  t.equal(last.context.detours, MAX_DETOURS, 'each detour counted')
  const [past] = transition(installationMachine, last, spent as never)
  t.equal(past.value, 'ExchangeFailed', 'a spent code past the bound fails')
  const [done] = transition(installationMachine, restore(installationMachine, stored),
    { type: 'xstate.done.actor.exchangeCode', output: { exchangedAt: 'now', instanceId: 'i' } } as never)
  t.equal(done.value, 'Tokened', 'and the old snapshot still completes as before')
})
