import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { createBrowser, type Page } from './support/browser.ts'
import { builtEntry } from './support/build.ts'
import { freePort } from './support/service.ts'

/**
 * The newcomer's path with real processes: `node --import tsx src/server.ts` with nothing
 * configured (embedded PGlite, sandbox Wix), driven over HTTP as a browser and an admin would.
 * The first start is exactly `npm start`'s; the later ones run the same source bundled for the
 * tests (scripts/test-build.mjs), which starts on plain `node`.
 */

// The first start runs initdb for the embedded Postgres (seconds); every flow below is real.
t.setTimeout(240_000)
const root = fileURLToPath(new URL('..', import.meta.url))
const dataDir = await mkdtemp(join(tmpdir(), 'wie-sandbox-'))
t.teardown(() => rm(dataDir, { recursive: true, force: true }))
const port = await freePort()
const url = `http://127.0.0.1:${port}`
const SANDBOX = `${url}/_sandbox/wix`

interface Proc {
  exited: Promise<number | null>
  output: () => { stdout: string; stderr: string }
  stop: () => Promise<number | null>
}

/** Starts the service with a clean environment: the way `npm start` does, or from the tests' bundle. */
async function launch(env: Record<string, string> = {}, how: 'npm start' | 'bundle' = 'bundle'): Promise<Proc> {
  const program = how === 'npm start' ? ['--import', 'tsx', 'src/server.ts'] : [await builtEntry('src/server.ts')]
  const child = spawn(process.execPath, program, {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? tmpdir(),
      DATA_DIR: dataDir,
      PORT: String(port),
      PUBLIC_URL: url,
      LOG_LEVEL: 'info',
      // Short, so a slow exchange shows the waiting page; the other flows follow it if they get it.
      REDIRECT_WAIT_MS: '300',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  // Drained all along: a full pipe would block the server's logging.
  child.stdout.on('data', (c) => { stdout = (stdout + c).slice(-2_000_000) })
  child.stderr.on('data', (c) => { stderr = (stderr + c).slice(-200_000) })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  return {
    exited,
    output: () => ({ stdout, stderr }),
    stop: async () => {
      child.kill('SIGTERM')
      return exited
    },
  }
}

interface Running extends Proc {
  installUrl: string
  adminToken: string
}

/** Waits for the one "Sandbox ready" line: all a newcomer needs to read. */
async function startSandbox(how: 'npm start' | 'bundle' = 'bundle'): Promise<Running> {
  const proc = await launch({}, how)
  let exitCode: number | null | undefined
  void proc.exited.then((c) => { exitCode = c })
  // However long a loaded machine takes: the process prints the line or exits (tap's timeout backstops).
  for (;;) {
    for (const line of proc.output().stdout.split('\n')) {
      let msg: unknown
      try { msg = JSON.parse(line).msg } catch { continue }
      const m = typeof msg === 'string' && /^Sandbox ready: open (\S+) to install; admin token for \/api: (\S+)$/.exec(msg)
      if (m) return { ...proc, installUrl: m[1]!, adminToken: m[2]! }
    }
    if (exitCode !== undefined) break
    await sleep(100)
  }
  const { stdout, stderr } = proc.output()
  throw new Error(`the sandbox did not print its ready line (exit ${exitCode}):\n${stderr}\n${stdout.slice(-4000)}`)
}

async function api(token: string, method: 'GET' | 'POST', path: string) {
  const res = await request(`${url}${path}`, { method, headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  let json: any
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.statusCode, json, text }
}

/** The CSRF token the control panel's forms carry. */
async function panelToken() {
  const res = await request(`${SANDBOX}/`)
  return /name="csrf" value="([^"]+)"/.exec(await res.body.text())?.[1] ?? ''
}

/** Presses one of the control panel's buttons, as its form does (same origin, with its token). */
async function press(action: string, fields: Record<string, string> = {}, headers: Record<string, string> = {}) {
  const res = await request(`${SANDBOX}/_control/action`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url, ...headers },
    body: new URLSearchParams({ action, csrf: await panelToken(), ...fields }).toString(),
  })
  await res.body.dump()
  return { status: res.statusCode, location: res.headers.location as string | undefined }
}

/** What reached the sandbox Wix: the call and the status it answered. */
async function wixCalls() {
  const res = await request(`${SANDBOX}/_control/requests`)
  const calls = (await res.body.json()) as { endpoint: string; body: { grant_type?: string } | null; status: number }[]
  return calls.map((c) => ({ call: `${c.endpoint}${c.body?.grant_type ? ` ${c.body.grant_type}` : ''}`, status: c.status }))
}
const statusesOf = async (call: string) => (await wixCalls()).filter((c) => c.call === call).map((c) => c.status)

/** A site owner's browser: App URL → sandbox installer → Approve → our Redirect URL, stopping there. */
async function approveInstall(installUrl: string) {
  const browser = createBrowser()
  const appUrl = await browser.get(installUrl)
  const installer = new URL(appUrl.location ?? 'http://invalid/')
  const consent = await browser.get(installer.toString())
  // The consent page's Approve form submits the installer's own parameters to `approve`.
  const approve = await browser.get(new URL(`approve${installer.search}`, installer).toString())
  const redirect = new URL(approve.location ?? 'http://invalid/')
  const callback = await browser.get(redirect.toString())
  const state = redirect.searchParams.get('state') ?? ''
  return {
    browser, appUrl, installer, consent, approve, redirect, callback,
    instanceId: redirect.searchParams.get('instanceId')!,
    // A failed exchange never takes the instance id: its installation is found by its own id.
    installationId: state.slice(0, state.indexOf('.')),
  }
}

/** Follows the waiting page's refresh (`/wix/redirect/continue`) until the exchange is over. */
async function settle(browser: ReturnType<typeof createBrowser>, page: Page): Promise<Page> {
  for (let i = 0; i < 120 && page.status === 202; i++) {
    await sleep(250)
    page = await browser.get(`${url}/wix/redirect/continue`)
  }
  return page
}

/** A whole successful install, ending on the post-install page. */
async function install(t: Test, installUrl: string) {
  const flow = await approveInstall(installUrl)
  const done = await settle(flow.browser, flow.callback)
  t.equal(done.status, 302, 'the Redirect URL sends the browser on')
  t.equal(done.location, `${url}/?instanceId=${flow.instanceId}`, 'to the post-install page')
  const landing = await flow.browser.get(done.location ?? url)
  t.match(landing.body, /The app is installed/, 'which says the app is installed')
  return flow
}

const installUrlFor = (token: string) => `${url}/wix/app-url?token=${encodeURIComponent(token)}`

let service: Running | undefined
let adminToken = ''
let finishedInstance = ''
let unfinishedInstance = ''

t.test('one command starts the service with embedded Postgres and a sandbox Wix', async (t) => {
  service = await startSandbox('npm start')
  adminToken = service.adminToken
  t.equal(service.installUrl, `${url}/wix/app-url?token=sandbox-install`, 'the ready line names the URL that starts an install')
  t.ok(adminToken.length >= 24, 'and an admin token long enough to guard /api')
  t.ok(existsSync(join(dataDir, 'sandbox-secrets.json')), 'the generated secrets are kept in DATA_DIR')
  t.ok(existsSync(join(dataDir, 'pglite')), 'beside the embedded database')
  t.equal((await api('wrong-token-0123456789abcdef', 'GET', '/api/installations')).status, 401, '/api refuses another token')
  t.equal((await api(adminToken, 'GET', '/api/installations')).status, 200, 'and accepts the printed one')
})

t.test('the printed URL installs the app end to end, and finish makes it Finished', async (t) => {
  const flow = await approveInstall(service!.installUrl)
  t.equal(flow.appUrl.status, 302, 'the App URL redirects the browser')
  t.equal(`${flow.installer.origin}${flow.installer.pathname}`, `${SANDBOX}/installer/install`, 'to the sandbox Wix installer')
  t.equal(flow.consent.status, 200, 'the consent page loads')
  t.match(flow.consent.body, /id="approve"/, 'with an Approve button')
  t.equal(flow.approve.status, 302, 'Approve sends the browser back')
  t.equal(`${flow.redirect.origin}${flow.redirect.pathname}`, `${url}/wix/redirect`, 'to our Redirect URL')
  const done = await settle(flow.browser, flow.callback)
  t.equal(done.location, `${url}/?instanceId=${flow.instanceId}`, 'which ends on the post-install page')
  const landing = await flow.browser.get(done.location ?? url)
  t.equal(landing.status, 200, 'the post-install page loads')
  t.match(landing.body, /The app is installed/, 'and says the app is installed')

  const one = await api(adminToken, 'GET', `/api/installations/${flow.instanceId}`)
  t.equal(one.json?.state, 'SetupIncomplete', 'the installation waits for the app to finish its setup')
  const finish = await api(adminToken, 'POST', `/api/installations/${one.json?.id}/finish`)
  t.equal(finish.status, 200, 'finish answers 200')
  t.equal(finish.json?.state, 'Finished', 'and the installation is Finished')
  t.same(await wixCalls(), [
    { call: 'oauth/access authorization_code', status: 200 },
    { call: 'oauth2/token-info', status: 200 },
    { call: 'oauth/access refresh_token', status: 200 },
    { call: 'bi-event', status: 200 },
  ], 'the sandbox Wix saw the exchange, the instance lookup, a refresh and the bi-event, all accepted')
  finishedInstance = flow.instanceId

  // Left unfinished: finishing it after the restart needs the refresh token issued before it.
  const second = await install(t, installUrlFor('second-site'))
  unfinishedInstance = second.instanceId
  t.equal((await api(adminToken, 'GET', `/api/installations/${unfinishedInstance}`)).json?.state, 'SetupIncomplete', 'a second site is installed and left unfinished')
})

t.test('a second process on the same DATA_DIR refuses to start, in one line', async (t) => {
  const second = await launch({ PORT: String(await freePort()) })
  // One that waited for the lock instead would never exit: tap's timeout fails the file then.
  const code = await second.exited
  t.not(code, 0, 'the second process exits instead of waiting for the lock, with a failure exit code')
  const lines = second.output().stderr.split('\n').filter((l) => l.trim() !== '')
  t.equal(lines.length, 1, `it explains itself in one line, not a stack trace; it printed:\n${second.output().stderr}`)
  t.match(lines[0] ?? '', /DATA_DIR/, 'the line names DATA_DIR')
  t.ok((lines[0] ?? '').includes(dataDir), 'and the directory in use')
  const health = await request(`${url}/healthz`)
  await health.body.dump()
  t.equal(health.statusCode, 200, 'the first process keeps serving')
})

t.test('SIGTERM stops it cleanly; a restart keeps installations, tokens and keys', async (t) => {
  t.equal(await service!.stop(), 0, 'the service exits 0 on SIGTERM')
  service = await startSandbox()
  t.equal(service.adminToken, adminToken, 'the restarted service prints the same admin token')

  const finished = await api(adminToken, 'GET', `/api/installations/${finishedInstance}`)
  t.equal(finished.status, 200, 'the installation is still there, with the same admin token')
  t.equal(finished.json?.state, 'Finished', 'and still Finished')

  const token = await api(adminToken, 'POST', `/api/installations/${finished.json?.id}/access-token`)
  t.equal(token.status, 200, 'the access-token route still answers after the restart')
  const check = await createBrowser().get(`${SANDBOX}/installer/close-window?access_token=${encodeURIComponent(token.json?.accessToken ?? '')}`)
  t.match(check.body, /The access token is valid\./, 'with an access token the restarted sandbox Wix accepts')

  const finish = await api(adminToken, 'POST', `/api/installations/${unfinishedInstance}/finish`)
  t.equal(finish.json?.state, 'Finished', 'a site installed before the restart can still be finished')
  t.same(await statusesOf('oauth/access refresh_token'), [200], 'because the sandbox Wix still accepts the refresh token it issued before the restart')
  t.same(await statusesOf('bi-event'), [200], 'and the bi-event reached it')
})

t.test('the control panel lists the switches and the recorded calls', async (t) => {
  const browser = createBrowser()
  const bare = await browser.get(SANDBOX)
  t.equal(bare.status, 302, 'the panel without a trailing slash redirects')
  t.equal(new URL(bare.location ?? '', SANDBOX).toString(), `${SANDBOX}/`, 'to the panel')
  await press('reset')
  // A call carrying markup, recorded as it came: the panel must show it as text.
  await (await request(`${SANDBOX}/oauth/access`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: '<script>alert(1)</script>' }),
  })).body.dump()
  const pressed = await press('exchange-503')
  t.equal(pressed.status, 303, 'a switch answers like a form post: see the panel')
  t.equal(new URL(pressed.location ?? '', `${SANDBOX}/_control/action`).toString(), `${SANDBOX}/`, 'the panel itself')
  const panel = await browser.get(`${SANDBOX}/`)
  t.equal(panel.status, 200, 'the panel loads')
  t.match(String(panel.headers['content-type']), /text\/html/, 'as HTML')
  for (const id of ['exchange-503', 'exchange-429', 'exchange-400', 'exchange-slow', 'bi-event-500', 'release', 'reset']) {
    t.match(panel.body, new RegExp(`<button type="submit" id="${id}">`), `it has a ${id} button`)
  }
  t.match(panel.body, /Recorded calls: 1 /, 'it counts the recorded call')
  t.match(panel.body, /oauth\/access \(authorization_code\): 503, 1 more time/, 'it lists the queued 503')
  t.notMatch(panel.body, /<script>/, 'recorded input is escaped')
  t.match(panel.body, /&lt;script&gt;/, 'and shown as text')
  const unknown = await request(`${SANDBOX}/_control/action`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `action=explode&csrf=${await panelToken()}`,
  })
  await unknown.body.dump()
  t.equal(unknown.statusCode, 400, 'an unknown action gets a 400')
  await press('reset')
  const cleared = await browser.get(`${SANDBOX}/`)
  t.match(cleared.body, /Recorded calls: 0 /, 'reset clears the calls')
  t.match(cleared.body, /<p id="pending">None\.<\/p>/, 'and the queued failures')
})

t.test('the control panel refuses cross-site posts, and its recorded calls cannot be poisoned', async (t) => {
  await press('reset')
  const forms = [
    ['a post from another origin', { origin: 'http://evil.example' }, await panelToken()],
    ['a cross-site fetch', { 'sec-fetch-site': 'cross-site' }, await panelToken()],
    ['a post without the token', {}, ''],
    ['a post with a forged token', {}, 'forged-token'],
  ] as const
  for (const [label, headers, csrf] of forms) {
    const res = await request(`${SANDBOX}/_control/action`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams({ action: 'exchange-400', csrf }).toString(),
    })
    await res.body.dump()
    t.equal(res.statusCode, 403, `${label}: 403`)
  }
  const plain = await request(`${SANDBOX}/_control/reset`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' })
  await plain.body.dump()
  t.equal(plain.statusCode, 415, 'a text/plain post (what a cross-site form can send) to the JSON switches: 415')
  const panel = await createBrowser().get(`${SANDBOX}/`)
  t.match(panel.body, /<p id="pending">None\.<\/p>/, 'no failure was queued by any of them')

  const deep = `${'{"a":'.repeat(5_000)}{}${'}'.repeat(5_000)}`
  const poisoned = await request(`${SANDBOX}/oauth/access`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: deep })
  await poisoned.body.dump()
  t.ok(poisoned.statusCode < 500, 'a deeply nested body is answered without a 5xx')
  const listed = await request(`${SANDBOX}/_control/requests`)
  await listed.body.dump()
  t.equal(listed.statusCode, 200, 'and the recorded calls still list')
  await press('reset')
})

t.test('each sandbox failure switch plays the failure path it names', async (t) => {
  t.beforeEach(async () => { await press('reset') })

  t.test('exchange 503: retried, then the install completes', async (t) => {
    t.equal((await press('exchange-503')).status, 303, 'the switch is set')
    const flow = await install(t, installUrlFor('site-503'))
    t.equal((await api(adminToken, 'GET', `/api/installations/${flow.instanceId}`)).json?.state, 'SetupIncomplete', 'the installation is SetupIncomplete')
    t.same(await statusesOf('oauth/access authorization_code'), [503, 200], 'Wix saw the exchange fail with 503, then a retry it accepted')
  })

  t.test('exchange 429: retried after Retry-After, then the install completes', async (t) => {
    await press('exchange-429')
    const flow = await install(t, installUrlFor('site-429'))
    t.equal((await api(adminToken, 'GET', `/api/installations/${flow.instanceId}`)).json?.state, 'SetupIncomplete', 'the installation is SetupIncomplete')
    t.same(await statusesOf('oauth/access authorization_code'), [429, 200], 'Wix saw a 429, then a retry it accepted')
  })

  t.test('exchange 400: the code is refused, never retried, the install fails visibly', async (t) => {
    await press('exchange-400')
    const flow = await approveInstall(installUrlFor('site-400'))
    const page = await settle(flow.browser, flow.callback)
    t.equal(page.status, 200, 'the browser gets a page, not an error')
    t.match(page.body, /could not be completed/, 'saying the installation could not be completed')
    const one = (await api(adminToken, 'GET', `/api/installations/${flow.installationId}`)).json
    t.equal(one?.state, 'ExchangeFailed', 'the installation is ExchangeFailed')
    t.equal(one?.failure?.reason, 'exchange_refused', 'because Wix refused the exchange')
    t.same(await statusesOf('oauth/access authorization_code'), [400], 'and the refused code was not sent again')
  })

  t.test('slow exchange: the browser waits on a page that moves on by itself', async (t) => {
    await press('exchange-slow')
    const flow = await approveInstall(installUrlFor('site-slow'))
    t.equal(flow.callback.status, 202, 'the Redirect URL answers the waiting page instead of hanging')
    t.match(flow.callback.body, /Finishing the installation/, 'which says the installation is being finished')
    t.match(flow.callback.body, /http-equiv="refresh"[^>]*\/wix\/redirect\/continue/, 'and refreshes itself to /wix/redirect/continue')
    const still = await flow.browser.get(`${url}/wix/redirect/continue`)
    t.equal(still.status, 202, 'while Wix holds the exchange, the page keeps waiting')
    t.same(await statusesOf('oauth/access authorization_code'), [0], 'the one exchange is still held by Wix')
    // Instead of waiting the 15 s out: the panel's "Answer held calls now".
    await press('release')
    const done = await settle(flow.browser, still)
    t.equal(done.status, 302, 'once Wix answers, the waiting page moves on')
    t.equal(done.location, `${url}/?instanceId=${flow.instanceId}`, 'to the post-install page')
    t.equal((await api(adminToken, 'GET', `/api/installations/${flow.instanceId}`)).json?.state, 'SetupIncomplete', 'the installation is SetupIncomplete')
  })

  t.test('bi-event 500: finish retries it and still reaches Finished', async (t) => {
    const flow = await install(t, installUrlFor('site-bi-500'))
    await press('bi-event-500')
    const finish = await api(adminToken, 'POST', `/api/installations/${flow.instanceId}/finish`)
    t.ok([200, 202].includes(finish.status), 'finish is accepted')
    let state = finish.json?.state
    for (let i = 0; i < 80 && state !== 'Finished'; i++) {
      await sleep(250)
      state = (await api(adminToken, 'GET', `/api/installations/${flow.instanceId}`)).json?.state
    }
    t.equal(state, 'Finished', 'the installation ends Finished')
    t.same(await statusesOf('bi-event'), [500, 200], 'Wix saw the bi-event fail with 500, then a retry it accepted')
  })
})

t.test('the control panel installs as a new app and uninstalls, with webhooks signed like Wix\'s', async (t) => {
  const browser = createBrowser()
  t.equal((await press('install-new-app')).status, 303, '"install as a new app" is pressed')
  const panel = await browser.get(`${SANDBOX}/`)
  const installed = panel.body.match(/AppInstalled ([0-9a-f-]{36}) → 200/)
  t.ok(installed, 'the panel shows AppInstalled delivered and answered 200')
  const instanceId = installed![1]!
  let one: any
  for (let i = 0; i < 40 && one?.state !== 'SetupIncomplete'; i++) {
    await sleep(250)
    one = (await api(adminToken, 'GET', `/api/installations/${instanceId}`)).json
  }
  t.same([one?.state, one?.origin], ['SetupIncomplete', 'webhook'], 'a webhook installation waits for the app\'s setup')
  t.equal((await api(adminToken, 'POST', `/api/installations/${instanceId}/access-token`)).status, 200, 'with a client-credentials token')

  const listed = (await browser.get(`${SANDBOX}/`)).body
  t.match(listed, new RegExp(`<option value="${instanceId}">`), 'the site is offered for an uninstall')
  t.equal((await press('uninstall', { instanceId })).status, 303, '"uninstall the app from this site" is pressed')
  for (let i = 0; i < 40 && one?.state !== 'Uninstalled'; i++) {
    await sleep(250)
    one = (await api(adminToken, 'GET', `/api/installations/${instanceId}`)).json
  }
  t.equal(one?.state, 'Uninstalled', 'AppRemoved uninstalls it')
  const token = await api(adminToken, 'POST', `/api/installations/${instanceId}/access-token`)
  t.same([token.status, token.json?.code], [409, 'UNINSTALLED'], 'and the access-token route says so')

  const elsewhere = await browser.get(`${SANDBOX}/installer/install?appId=sandbox-app&state=s&redirectUrl=${encodeURIComponent('http://127.0.0.1:9/wix/redirect')}`)
  t.equal(elsewhere.status, 400, 'the installer refuses a Redirect URL other than the registered one')
  t.match(elsewhere.body, /not registered/, 'saying so')
})

t.test('the restarted service also stops cleanly', async (t) => {
  t.equal(await service!.stop(), 0, 'it exits 0 on SIGTERM')
})
