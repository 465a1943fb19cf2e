import t from 'tap'
import { installationIdOf } from '../src/crypto/oauth-state.ts'
import { createBrowser } from './support/browser.ts'
import { freshDatabase } from './support/database.ts'
import { startService } from './support/service.ts'

/** The flow's cookies: one per begun install, `__Host-` where the scheme allows, cleared as set. */

const db = await freshDatabase()
t.teardown(db.drop)

t.test('two installs begun in two tabs of one browser both finish', async (t) => {
  const service = await startService(t, { db })
  const browser = createBrowser()
  const begin = async (token: string) => new URL((await browser.get(`${service.url}/wix/app-url?token=${token}`)).location!)
  const first = await begin('tab-1')
  const second = await begin('tab-2')
  const ids = [first, second].map((u) => installationIdOf(u.searchParams.get('state')!))
  t.ok(ids.every((id) => browser.jar.has(`wix_install_state_${id}`)), 'each tab\'s install has a state cookie of its own')

  const approve = async (installer: URL, instanceId: string) => {
    const u = new URL(installer.toString().replace('/installer/install', '/installer/approve'))
    u.searchParams.set('instanceId', instanceId)
    return new URL((await browser.get(u.toString())).location!)
  }
  const backFirst = await approve(first, '11111111-2222-4333-8444-555555555555')
  const backSecond = await approve(second, '66666666-7777-4888-8999-aaaaaaaaaaaa')
  // The second tab comes back first, then the first.
  const doneSecond = await browser.get(backSecond.toString())
  const doneFirst = await browser.get(backFirst.toString())
  t.equal(doneSecond.status, 302, 'the second tab finishes')
  t.equal(doneFirst.status, 302, 'and so does the first, after it')
  t.equal(doneFirst.location, `${service.url}/?instanceId=11111111-2222-4333-8444-555555555555`, 'each on its own instance')
  for (const id of ids) {
    const one = await service.app.engine.waitFor(id, (w) => w.statePath === 'SetupIncomplete.waiting', 5_000)
    t.equal(one?.statePath, 'SetupIncomplete.waiting', `installation ${id} is installed`)
    t.notOk(browser.jar.has(`wix_install_state_${id}`), 'and its spent state cookie is cleared')
  }
})

t.test('a browser that begins many installs keeps a bounded number of state cookies', async (t) => {
  const service = await startService(t, { db })
  const browser = createBrowser()
  let newest = ''
  for (let i = 0; i < 20; i++) {
    const start = await browser.get(`${service.url}/wix/install`)
    newest = installationIdOf(new URL(start.location!).searchParams.get('state')!)
  }
  const kept = [...browser.jar.keys()].filter((n) => n.startsWith('wix_install_state_'))
  t.ok(kept.length <= 8, `${kept.length} state cookies kept, not 20`)
  t.ok(browser.jar.has(`wix_install_state_${newest}`), 'the newest install keeps its cookie: the oldest are the ones dropped')
})

t.test('over https: __Host- cookies, and cleared with the attributes they were set with', async (t) => {
  const service = await startService(t, { db, env: { PUBLIC_URL: 'https://app.example', COOKIE_SAME_SITE: 'none' } })
  service.wix.register({ redirectUrl: 'https://app.example/wix/redirect' })
  const browser = createBrowser()
  // As a browser that reached the service by PUBLIC_URL's name (a start on another host is moved there).
  const start = await browser.get(`${service.url}/wix/install`, { host: 'app.example' })
  const installer = new URL(start.location!)
  const id = installationIdOf(installer.searchParams.get('state')!)
  const set = String(start.headers['set-cookie'])
  t.match(set, new RegExp(`^__Host-wix_install_state_${id}=`), 'the state cookie is __Host- prefixed')
  t.match(set, /Path=\//, 'with Path=/')
  t.notMatch(set, /Domain=/i, 'no Domain')
  t.match(set, /Secure/, 'Secure')
  t.match(set, /SameSite=None/, 'and SameSite=None, for Wix\'s iframe')

  const approve = new URL(installer.toString().replace('/installer/install', '/installer/approve'))
  const back = new URL((await browser.get(approve.toString())).location!)
  // The fake registered the https Redirect URL; the browser comes back to this server.
  const done = await browser.get(`${service.url}/wix/redirect${back.search}`)
  t.equal(done.status, 302, 'the callback is taken')
  const cleared = [done.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith(`__Host-wix_install_state_${id}=`))
  t.ok(cleared, 'the spent state cookie is cleared')
  t.match(cleared!, /Expires=Thu, 01 Jan 1970/, 'expired')
  t.match(cleared!, /Secure/, 'with Secure')
  t.match(cleared!, /SameSite=None/, 'and SameSite=None, as it was set: a browser in the iframe honours the deletion')
  t.match(cleared!, /Path=\//, 'on the same path')
})

t.test('a state cookie\'s value sent as a flow cookie is refused with a 4xx and never logged', async (t) => {
  const service = await startService(t, { db })
  const browser = createBrowser()
  const start = await browser.get(`${service.url}/wix/install`)
  const state = new URL(start.location!).searchParams.get('state')!
  const signed = browser.jar.get(`wix_install_state_${installationIdOf(state)}`)!.value
  // Signed by this service, so it unsigns: only its name is the attacker's.
  for (const name of ['wix_install_flow_x', `wix_install_flow_${state}`]) {
    const continueUrl = `${service.url}/wix/redirect/continue`
    const page = await createBrowser().get(continueUrl, { cookie: `${name}=${signed}`, accept: 'application/json' })
    t.equal(page.status, 400, `sent as ${name.slice(0, 20)}…: a 400, not a 500`)
    t.match(JSON.parse(page.body), { code: 'FLOW_COOKIE_INVALID' }, 'with its named code')
  }
  const cookie = `wix_install_flow_x=${signed}`
  const html = await createBrowser().get(`${service.url}/wix/redirect/continue`, { cookie, accept: 'text/html' })
  t.equal(html.status, 400, 'a browser gets the 400 as a page')
  const logs = service.logs.join('')
  t.notMatch(logs, /"level":50/, 'nothing is logged as an error')
  t.notOk(logs.includes(state.split('.')[1]!), 'the state in the cookie never reaches the log')
  t.notOk(logs.includes(decodeURIComponent(signed).split('.').at(-1)!), 'nor the cookie\'s signature')
})
