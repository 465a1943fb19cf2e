import t from 'tap'
import { request } from 'undici'
import { SESSION_TTL_MS } from '../src/console/sessions.ts'
import { freshDatabase } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { ADMIN_TOKEN, startService, type Service } from './support/service.ts'

/** The admin console over real HTTP with real cookies: sign-in, sessions, CSRF, list, one installation, actions. */

const db = await freshDatabase()
t.teardown(db.drop)

let clockOffsetMs = 0
const service = await startService(t, { db, now: () => new Date(Date.now() + clockOffsetMs) })

/** A browser as far as the console cares: keeps its cookies, sends forms, follows nothing by itself. */
function consoleClient(s: Service) {
  const jar = new Map<string, string>()
  let setCookies: string[] = []
  async function send(method: 'GET' | 'POST', path: string, form?: Record<string, string>, headers: Record<string, string> = {}) {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await request(`${s.url}${path}`, {
      method,
      headers: {
        accept: 'text/html',
        ...(cookie && { cookie }),
        ...(form && { 'content-type': 'application/x-www-form-urlencoded', origin: s.url }),
        ...headers,
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    })
    setCookies = [res.headers['set-cookie'] ?? []].flat()
    for (const line of setCookies) {
      const [pair] = line.split(';')
      const [name, value] = [pair!.slice(0, pair!.indexOf('=')), pair!.slice(pair!.indexOf('=') + 1)]
      if (!value || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) jar.delete(name)
      else jar.set(name, value)
    }
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
  }
  const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? ''
  return {
    jar,
    get lastSetCookies() {
      return setCookies
    },
    get: (path: string, headers?: Record<string, string>) => send('GET', path, undefined, headers),
    post: (path: string, form: Record<string, string>, headers?: Record<string, string>) => send('POST', path, form, headers),
    csrfOf,
    async signIn(token = ADMIN_TOKEN) {
      return send('POST', '/console/sign-in', { token })
    },
  }
}

/** An installation carried through the flow to SetupIncomplete, by a site owner's browser. */
async function installed() {
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const id = await owner.installationId()
  const back = await owner.approve()
  await owner.callback(back)
  return { id, instanceId: back.searchParams.get('instanceId')! }
}
async function authorizing() {
  const owner = siteOwner(service)
  await owner.openAppUrl()
  return owner.installationId()
}
const stateOf = async (id: string) => (await service.api('GET', `/api/installations/${id}`)).json.state as string

const first = await installed()

t.test('without a session: the sign-in form and no data', async (t) => {
  const anon = consoleClient(service)
  const list = await anon.get('/console')
  t.equal(list.status, 200, '/console answers')
  t.match(list.body, /<input id="token" name="token" type="password"/, 'with a password field for the admin token')
  t.notMatch(list.body, new RegExp(first.id), 'and no installation id')
  t.notMatch(list.body, new RegExp(first.instanceId), 'nor instance id')
  const one = await anon.get(`/console/installations/${first.id}`)
  t.match(one.body, /type="password"/, 'an installation page without a session is the sign-in form too')
  t.notMatch(one.body, new RegExp(`${first.instanceId}|SetupIncomplete|<svg`), 'showing nothing of the installation')
  t.match(one.body, new RegExp(`name="next" value="/console/installations/${first.id}"`), 'and coming back to it after signing in')
  const version = await anon.get(`/console/installations/${first.id}/version`, { accept: 'application/json' })
  t.equal(version.status, 401, 'the live poll without a session is a 401')
  t.equal(JSON.parse(version.body).code, 'CONSOLE_SIGNED_OUT', 'named CONSOLE_SIGNED_OUT')
  const finish = await anon.post(`/console/installations/${first.id}/finish`, { csrf: 'x', confirm: 'yes' })
  t.equal(finish.status, 401, 'an action without a session is a 401')
  t.equal(await stateOf(first.id), 'SetupIncomplete', 'and changes nothing')
  t.notOk(service.wix.requests.some((r) => r.endpoint === 'bi-event'), 'no bi-event reached Wix')
})

t.test('signing in: a wrong token is refused, the right one gets a session cookie that is not the token', async (t) => {
  const c = consoleClient(service)
  const wrong = await c.signIn('not-the-admin-token-at-all-000')
  t.equal(wrong.status, 401, 'a wrong token is a 401')
  t.match(wrong.body, /That is not the admin token/, 'saying so')
  t.equal(c.jar.size, 0, 'and sets no cookie')

  const right = await c.signIn()
  t.equal(right.status, 303, 'the admin token signs in')
  t.equal(right.headers.location, '/console', 'and goes to the list')
  const line = c.lastSetCookies.find((l) => l.startsWith('wie_console='))!
  t.ok(line, 'a session cookie is set')
  t.match(line, /; HttpOnly/, 'HttpOnly')
  t.match(line, /; SameSite=Strict/, 'SameSite=Strict')
  t.match(line, /; Path=\/console/, 'for the console only')
  t.match(line, new RegExp(`; Max-Age=${SESSION_TTL_MS / 1000}`), 'and it expires')
  t.notMatch(line, new RegExp(ADMIN_TOKEN), 'it does not contain the admin token')
  const [row] = await db.sql<{ id_hash: string }[]>`select id_hash from wix_install.console_sessions`
  t.notOk(line.includes(row!.id_hash), 'nor what the database keeps of the session')
  t.notOk(service.logs.some((l) => l.includes(ADMIN_TOKEN)), 'no log line holds the token')

  const list = await c.get('/console')
  t.equal(list.status, 200, 'the list answers with the session')
  t.match(list.body, new RegExp(`/console/installations/${first.id}`), 'listing the installation')
  t.match(list.body, new RegExp(first.instanceId), 'with its instance id')
  t.match(list.body, /<dt>SetupIncomplete<\/dt><dd>1<\/dd>/, 'and the counts by state on top')

  const forged = await c.post('/console/sign-in', { token: ADMIN_TOKEN }, { origin: 'https://evil.example' })
  t.equal(forged.status, 403, 'a sign-in posted from another site is refused')
})

t.test('sessions end: signing out, and after their time', async (t) => {
  const c = consoleClient(service)
  await c.signIn()
  const page = await c.get('/console')
  const cookie = c.jar.get('wie_console')!
  const csrf = c.csrfOf(page.body)
  t.ok(csrf.length >= 32, 'the page carries a CSRF token for its forms')

  const out = await c.post('/console/sign-out', { csrf })
  t.equal(out.status, 303, 'signing out answers with a redirect')
  t.notOk(c.jar.has('wie_console'), 'and clears the cookie')
  const replayed = await request(`${service.url}/console`, { headers: { cookie: `wie_console=${cookie}` } })
  const body = await replayed.body.text()
  t.match(body, /type="password"/, 'the old cookie, sent again, gets the sign-in form')
  t.notMatch(body, new RegExp(first.id), 'and no data: the session is over on the server too')

  const later = consoleClient(service)
  await later.signIn()
  t.notMatch((await later.get('/console')).body, /type="password"/, 'a new session works')
  clockOffsetMs = SESSION_TTL_MS + 60_000
  t.teardown(() => {
    clockOffsetMs = 0
  })
  t.match((await later.get('/console')).body, /type="password"/, 'and has expired after its time')
  clockOffsetMs = 0
})

t.test('the list: filters, search, keyset paging, bad input', async (t) => {
  const other = await authorizing()
  const c = consoleClient(service)
  await c.signIn()
  const byState = await c.get('/console?state=Authorizing')
  t.match(byState.body, new RegExp(other), 'the state filter shows the Authorizing installation')
  t.notMatch(byState.body, new RegExp(first.id), 'and not the SetupIncomplete one')
  const byInstance = await c.get(`/console?q=${first.instanceId}`)
  t.match(byInstance.body, new RegExp(first.id), 'searching by instance id finds its installation')
  t.notMatch(byInstance.body, new RegExp(other), 'and only it')
  const byId = await c.get(`/console?q=${other}`)
  t.match(byId.body, new RegExp(`/console/installations/${other}`), 'searching by installation id finds it')
  t.notMatch(byId.body, new RegExp(first.id), 'and only it')

  const page1 = await c.get('/console?limit=1')
  const next = /<a rel="next" href="([^"]+)"/.exec(page1.body)?.[1]?.replace(/&amp;/g, '&')
  t.ok(next, 'one per page leaves a link to the next page')
  const ids = (html: string) => [...html.matchAll(/<a href="\/console\/installations\/([0-9a-f-]{36})">/g)].map((m) => m[1])
  const page2 = await c.get(next!)
  t.equal(ids(page1.body).length, 1, 'the first page holds one')
  t.equal(ids(page2.body).length, 1, 'so does the second')
  t.not(ids(page1.body)[0], ids(page2.body)[0], 'a different one')

  for (const bad of ['/console?state=%3Cscript%3E', '/console?limit=0', '/console?cursor=bm9wZQ', '/console?q=%27%20or%201%3D1']) {
    const res = await c.get(bad)
    t.equal(res.status, 400, `${bad} is a 400`)
    t.match(res.body, /<code>(INVALID_REQUEST|INVALID_CURSOR)<\/code>/, 'a page naming the error code')
  }
})

t.test('one installation: the machine drawn, the current state marked, history and effect attempts', async (t) => {
  service.wix.failNext({ endpoint: 'bi-event', status: 400, times: 1 })
  const { id, instanceId } = await installed()
  await service.api('POST', `/api/installations/${id}/finish`)
  const c = consoleClient(service)
  await c.signIn()
  const res = await c.get(`/console/installations/${instanceId}`)
  t.equal(res.status, 200, 'the page answers by instance id')
  t.match(res.headers['content-security-policy'], /default-src 'self'/, 'loading nothing from elsewhere')
  const svg = /<svg class="diagram"[\s\S]*?<\/svg>/.exec(res.body)?.[0] ?? ''
  t.ok(svg, 'with an SVG diagram')
  for (const state of ['AppUrlHit', 'Authorizing', 'CodeReceived', 'Tokened', 'SetupIncomplete', 'Finished', 'ExchangeFailed', 'Cancelled']) {
    t.match(svg, new RegExp(`>${state}</text>`), `naming ${state}`)
  }
  const current = [...svg.matchAll(/<g [^>]*aria-current="true"[^>]*>/g)].map((m) => m[0])
  t.equal(current.length, 1, 'one state is marked current')
  t.match(current[0], /data-state="SetupIncomplete\.waiting"/, 'the one the installation is in')
  const taken = [...svg.matchAll(/<g class="edge taken" data-event="([^"]+)"/g)].map((m) => m[1])
  t.same(taken.sort(), ['BROWSER_SENT_ON', 'CALLBACK', 'FINISH', 'INSTALLER_REDIRECTED', 'xstate.done.actor.exchangeCode', 'xstate.error.actor.finishSetup', 'xstate.init'].sort(),
    'the arrows it took are drawn as taken')
  t.match(res.body, /<td><code>CALLBACK<\/code><\/td><td>Authorizing → CodeReceived<\/td><td>route:redirect<\/td>/, 'the history lists each transition taken')
  const attempts = (await service.api('GET', `/api/installations/${id}`)).json.effectAttempts
  t.match(attempts[0], { effect: 'exchangeCode', attempt: 1, outcome: 'ok', startedAt: null, error: null },
    'the exchange done by its first run is listed: its job is gone, its result in history tells it')
  const attempt = attempts.find((a: { effect: string; outcome: string }) => a.effect === 'finishSetup' && a.outcome === 'failed')
  t.ok(attempt?.wixRequestId, 'the API has the failed bi-event attempt with a Wix request id')
  t.match(res.body, new RegExp(`<td>finishSetup</td><td>1</td><td class="outcome-failed">failed</td><td><code>${attempt.error.code}</code> \\(HTTP 400\\)`),
    'the page lists that attempt with its error code')
  t.ok(res.body.includes(`<code>${attempt.wixRequestId}</code>`), "and Wix's request id")
  t.notMatch(res.body, /\[redacted\]<\/code> \(HTTP/, 'error codes are shown, not redacted')
  t.match(res.body, /Retry the bi-event…/, 'the retry action is offered')
  t.notMatch(res.body, /<summary>Cancel…/, 'cancel is not, after the tokens')
  t.notMatch(res.body, /<summary>Finish…/, 'nor a plain finish, since one failed')

  const missing = await c.get('/console/installations/00000000-0000-4000-8000-000000000000')
  t.equal(missing.status, 404, 'an unknown installation is a 404')
  t.match(missing.body, /INSTALLATION_NOT_FOUND/, 'naming INSTALLATION_NOT_FOUND')
})

t.test('actions: confirmed, CSRF-protected, and only where the state allows', async (t) => {
  const { id } = await installed()
  const c = consoleClient(service)
  await c.signIn()
  const page = await c.get(`/console/installations/${id}`)
  const csrf = c.csrfOf(page.body)
  t.match(page.body, new RegExp(`<form method="post" action="/console/installations/${id}/finish">`), 'finish is offered in SetupIncomplete')

  const noCsrf = await c.post(`/console/installations/${id}/finish`, { csrf: 'forged', confirm: 'yes' })
  t.equal(noCsrf.status, 403, 'a wrong CSRF token is a 403')
  const crossSite = await c.post(`/console/installations/${id}/finish`, { csrf, confirm: 'yes' }, { origin: 'https://evil.example' })
  t.equal(crossSite.status, 403, 'a post from another origin is a 403')
  const unconfirmed = await c.post(`/console/installations/${id}/finish`, { csrf })
  t.equal(unconfirmed.status, 400, 'an unconfirmed action is a 400')
  t.equal(await stateOf(id), 'SetupIncomplete', 'none of them changed anything')

  const wrongState = await c.post(`/console/installations/${id}/cancel`, { csrf, confirm: 'yes' })
  t.equal(wrongState.status, 409, 'cancel after the tokens is a 409')
  t.match(wrongState.body, /Not done: <\/strong>Installation is SetupIncomplete/, 'saying why, on the installation page')
  t.equal(await stateOf(id), 'SetupIncomplete', 'and changes nothing')

  const finished = await c.post(`/console/installations/${id}/finish`, { csrf, confirm: 'yes' })
  t.equal(finished.status, 303, 'a confirmed finish goes through')
  t.equal(await stateOf(id), 'Finished', 'the installation is Finished')
  t.ok(service.wix.requests.some((r) => r.endpoint === 'bi-event' && r.status === 200), 'after the bi-event reached Wix')
  const after = await c.get(finished.headers.location as string)
  t.match(after.body, /role="status"><strong>Done: <\/strong>/, 'the page says it is done')
  t.match(after.body, /aria-current="true"[^>]*><rect[^>]*\/><text[^>]*>Finished</, 'and marks Finished as current')

  const early = await authorizing()
  const cancelled = await c.post(`/console/installations/${early}/cancel`, { csrf, confirm: 'yes' })
  t.equal(cancelled.status, 303, 'an installation waiting at the consent screen can be cancelled')
  t.equal(await stateOf(early), 'Cancelled', 'and is Cancelled')
})

t.test('live: the version endpoint moves with the installation', async (t) => {
  const { id } = await installed()
  const c = consoleClient(service)
  await c.signIn()
  const before = JSON.parse((await c.get(`/console/installations/${id}/version`, { accept: 'application/json' })).body)
  t.equal(before.state, 'SetupIncomplete.waiting', 'it says where the installation is')
  await service.api('POST', `/api/installations/${id}/finish`)
  const after = JSON.parse((await c.get(`/console/installations/${id}/version`, { accept: 'application/json' })).body)
  t.equal(after.state, 'Finished', 'and follows it')
  t.ok(after.version > before.version, 'with a higher version')
  const script = await c.get('/console/assets/console.js')
  t.match(script.body, /\/version|data-live|dataset\.live/, 'the page script polls it')
})
