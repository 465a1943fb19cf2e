import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { installationIdOf } from '../src/crypto/oauth-state.ts'
import { freshDatabase } from './support/database.ts'
import { latestInstallationId, siteOwner } from './support/flow.ts'
import { startService } from './support/service.ts'
import { testClock } from './support/engine.ts'

/**
 * The Redirect URL's checks. Every refusal is a named 4xx that leaves the installation as it was
 * and never calls Wix.
 */

const db = await freshDatabase()
t.teardown(db.drop)

const snapshotOf = async (id: string) => {
  const [row] = await db.sql`select state, version from wix_engine.workflows where id = ${id}`
  return row
}

t.test('each state-check error is distinct and changes nothing', async (t) => {
  const service = await startService(t, { db })

  const expectRefusal = async (t: Test, name: string, act: (owner: ReturnType<typeof siteOwner>, back: URL) => Promise<{ status: number; body: string }>, status: number, code: string) => {
    const owner = siteOwner(service)
    await owner.openAppUrl()
    const id = await latestInstallationId(service)
    const back = await owner.approve()
    const before = await snapshotOf(id)
    const calls = service.wix.requests.length
    const page = await act(owner, back)
    t.equal(page.status, status, `${name}: answers ${status}`)
    t.match(page.body, code, `${name}: names ${code}`)
    t.same(await snapshotOf(id), before, `${name}: the installation is untouched`)
    t.equal(service.wix.requests.length, calls, `${name}: Wix was not called`)
    return { owner, id, back }
  }

  await t.test('no cookie', async (t) => {
    await expectRefusal(t, 'cookie missing', async (_owner, back) => {
      const { createBrowser } = await import('./support/browser.ts')
      return createBrowser().get(back.toString()) // another browser: no cookie
    }, 400, 'STATE_COOKIE_MISSING')
  })

  await t.test('a state that is not this browser’s', async (t) => {
    await expectRefusal(t, 'state mismatch', async (owner, back) => {
      const forged = new URL(back)
      forged.searchParams.set('state', `${await owner.installationId()}.${'A'.repeat(43)}`)
      return owner.callback(forged)
    }, 403, 'STATE_MISMATCH')
  })

  // Only a cookie signed with our secret gets this far: a leaked COOKIE_SECRET, or a state
  // another deployment issued. The installation it names must still have issued it.
  const withSignedState = (owner: ReturnType<typeof siteOwner>, back: URL, state: string) => {
    // Named after the installation the forged state names, as the route looks for it.
    owner.browser.jar.set(`wix_install_state_${installationIdOf(state)}`, { value: encodeURIComponent(service.app.signCookie(state)), path: '/wix', attributes: '' })
    const forged = new URL(back)
    forged.searchParams.set('state', state)
    return owner.callback(forged)
  }

  await t.test('a signed state naming this installation, with other random bits', async (t) => {
    await expectRefusal(t, 'forged random part', async (owner, back) =>
      withSignedState(owner, back, `${await owner.installationId()}.${randomBytes(32).toString('base64url')}`), 403, 'STATE_UNKNOWN')
  })

  await t.test('a signed state naming no installation', async (t) => {
    await expectRefusal(t, 'unknown installation', async (owner, back) =>
      withSignedState(owner, back, `00000000-0000-4000-8000-000000000000.${randomBytes(32).toString('base64url')}`), 403, 'STATE_UNKNOWN')
  })

  await t.test('a tampered cookie', async (t) => {
    await expectRefusal(t, 'tampered cookie', async (owner, back) => {
      const cookie = owner.browser.jar.get(owner.stateCookie)!
      cookie.value = cookie.value.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))
      return owner.callback(back)
    }, 403, 'STATE_MISMATCH')
  })

  await t.test('a replayed callback', async (t) => {
    const owner = siteOwner(service)
    await owner.openAppUrl()
    const id = await latestInstallationId(service)
    const back = await owner.approve()
    const first = await owner.callback(back)
    t.equal(first.status, 302, 'the first callback succeeds')
    const before = await snapshotOf(id)
    const calls = service.wix.requests.length
    // The replay brings the same state and a cookie that matches it, as a browser does that never
    // got the first answer (so it has no flow cookie either).
    owner.browser.jar.set(owner.stateCookie, { value: service.app.signCookie(owner.state), path: '/wix', attributes: '' })
    owner.browser.jar.delete(owner.flowCookie)
    const replay = await owner.callback(back)
    t.equal(replay.status, 409, 'a replay answers 409')
    t.match(replay.body, 'STATE_ALREADY_USED', 'naming STATE_ALREADY_USED')
    t.same(await snapshotOf(id), before, 'the installation is untouched')
    t.equal(service.wix.requests.length, calls, 'and the code was not exchanged again')
    // It is this browser's own state: its page moves on to where the installation got to.
    t.match(replay.body, `url=${service.url}/wix/redirect/continue?installation=${id}`, 'the page refreshes to the continue route for its installation')
    t.notOk(owner.browser.jar.has(owner.stateCookie), 'the spent state cookie is cleared')
    const onward = await owner.browser.get(`${service.url}/wix/redirect/continue`)
    t.equal(onward.status, 302, 'the continue route sends the browser on')
    t.equal(onward.location, first.location, 'to where the first answer sent it')
    const json = await owner.callback(back).catch(() => undefined)
    t.equal(json?.status, 400, 'a third try, with no state cookie left, is refused outright')

    // The same replay as an API client sees it: JSON, no page to move on.
    owner.browser.jar.set(owner.stateCookie, { value: service.app.signCookie(owner.state), path: '/wix', attributes: '' })
    const api = await owner.browser.get(back.toString(), { accept: 'application/json' })
    t.equal(api.status, 409, 'still 409')
    t.same(JSON.parse(api.body), { statusCode: 409, code: 'STATE_ALREADY_USED', error: 'Conflict', message: 'This state has already been used: the callback was replayed' }, 'the named error, nothing more')
  })
})

t.test('an expired state: the consent screen was abandoned', async (t) => {
  const clock = testClock(new Date())
  const service = await startService(t, { db, now: clock.now, env: { CONSENT_TIMEOUT_MINUTES: '30' } })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const id = await latestInstallationId(service)
  const back = await owner.approve()
  clock.advance(31 * 60_000)
  await service.app.engine.runner.tick()
  await service.app.engine.runner.idle()
  const abandoned = (await service.api('GET', `/api/installations/${id}`)).json
  t.equal(abandoned.state, 'ConsentAbandoned', 'the consent timer ended the installation')
  t.equal(abandoned.failure.reason, 'consent_abandoned', 'with reason consent_abandoned')
  const before = await snapshotOf(id)
  const late = await owner.callback(back)
  t.equal(late.status, 410, 'a late callback answers 410')
  t.match(late.body, 'STATE_EXPIRED', 'naming STATE_EXPIRED')
  t.same(await snapshotOf(id), before, 'and changes nothing')
  t.equal(service.wix.requests.length, 0, 'nor calls Wix')
})

t.test('20 identical callbacks at once: exactly one code exchange', async (t) => {
  // Instances of one deployment share their secrets: a cookie signed by one is good at the other.
  const env = { COOKIE_SECRET: randomBytes(32).toString('hex'), TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64') }
  const serviceA = await startService(t, { db, env })
  const serviceB = await startService(t, { db, env, fake: serviceA.fake })
  for (const [label, services] of [['one instance', [serviceA]], ['two instances on one database', [serviceA, serviceB]]] as const) {
    await t.test(label, async (t) => {
      const owner = siteOwner(serviceA)
      await owner.openAppUrl()
      const id = await latestInstallationId(serviceA)
      const back = await owner.approve()
      const code = back.searchParams.get('code')!
      const pages = await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          const target = new URL(back)
          target.host = new URL(services[i % services.length]!.url).host
          return owner.callback(target)
        }),
      )
      const statuses = pages.map((p) => p.status)
      t.equal(statuses.filter((s) => s === 302).length, 1, 'one callback is sent on')
      t.equal(statuses.filter((s) => s === 409).length, 19, 'the other 19 are refused as already used')
      t.equal(serviceA.wix.countExchanges(code), 1, 'Wix saw exactly one exchange of the code')
      const [row] = await db.sql`select count(*)::int as n from wix_engine.workflow_events where workflow_id = ${id} and event_type = 'CALLBACK'`
      t.equal(row!.n, 1, 'one CALLBACK in history')
    })
  }
})
