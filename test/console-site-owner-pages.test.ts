import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import { loadConfig, PACKAGE_NAME } from '../src/config.ts'
import { createBrowser } from './support/browser.ts'
import { freshDatabase } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { startService } from './support/service.ts'

/** The pages a site owner sees speak to a site owner: plain words, the app's name, a way to start again, the code small. */

const db = await freshDatabase()
t.teardown(db.drop)
const service = await startService(t, { db, env: { APP_NAME: 'Acme Forms' } })
const startAgain = `href="${service.url}/wix/install"`
const stateFor = (id: string) => `${id}.${'A'.repeat(43)}`

t.test('a stale Redirect URL: what happened, in plain words, and a way to start again', async (t) => {
  const browser = createBrowser()
  const stale = await browser.get(`${service.url}/wix/redirect?code=c&instanceId=${randomUUID()}&state=${stateFor(randomUUID())}`)
  t.ok(stale.status >= 400 && stale.status < 500, `a 4xx (${stale.status})`)
  t.match(stale.headers['content-type'], /text\/html/, 'as a page')
  t.match(stale.body, /<h1>This installation link can no longer be used<\/h1>/, 'titled in plain words')
  t.match(stale.body, /It has expired, or it was opened in another browser/, 'saying why')
  t.match(stale.body, /<p class="app">Acme Forms<\/p>/, "naming the app (APP_NAME)")
  t.match(stale.body, new RegExp(`<a class="button" ${startAgain}>Start the installation again</a>`), 'with a button that starts the install again')
  t.match(stale.body, /<small>Error code for support: <code>STATE_[A-Z_]+<\/code><\/small>/, 'and the error code small, for support')
  t.notMatch(stale.body.replace(/<p class="code">.*?<\/p>/, ''), /querystring|instanceId|state parameter|cookie/i, 'no developer words')

  const malformed = await browser.get(`${service.url}/wix/redirect?code=c&state=not-a-state`)
  t.equal(malformed.status, 400, 'a malformed link is a 400')
  t.match(malformed.body, /<h1>This installation link is not valid<\/h1>/, 'said plainly')
  t.notMatch(malformed.body, /querystring\.state must be/, 'not as a validation message')
  t.match(malformed.body, /<code>INVALID_REQUEST<\/code>/, 'the code is there, small')
  t.match(malformed.body, new RegExp(startAgain), 'and the way to start again')

  const api = await service.api('GET', `/wix/redirect?code=c&state=not-a-state`, { token: null })
  t.equal(api.json.code, 'INVALID_REQUEST', 'an API client still gets JSON with the named code')
})

t.test("a browser without the flow's cookie, and a replayed callback", async (t) => {
  const lost = await createBrowser().get(`${service.url}/wix/redirect/continue`)
  t.equal(lost.status, 400, 'no installation in progress is a 400')
  t.match(lost.body, /<h1>No installation in progress<\/h1>/, 'said plainly')
  t.match(lost.body, new RegExp(startAgain), 'with the way to start again')

  const owner = siteOwner(service)
  await owner.openAppUrl()
  const back = await owner.approve()
  // A retry after an answer that never arrived: the browser still holds its state cookie.
  const stateCookie = owner.browser.jar.get(owner.stateCookie)!
  await owner.callback(back)
  owner.browser.jar.set(owner.stateCookie, stateCookie)
  const replayed = await owner.callback(back)
  t.equal(replayed.status, 409, 'the same callback again is a 409')
  t.match(replayed.body, /<h1>Your installation goes on<\/h1>/, 'telling the owner the installation goes on')
  t.match(replayed.body, /http-equiv="refresh"/, 'on a page that moves on by itself')

  const done = await owner.browser.get(`${service.url}/?instanceId=${back.searchParams.get('instanceId')}`)
  t.match(done.body, /<h1>The app is installed<\/h1>/, 'the post-install page says the app is installed')
  t.match(done.body, /Acme Forms is now installed on your site/, 'by its name')
})

t.test('APP_NAME: the package name by default, a clear line when bad', async (t) => {
  const base = { ADMIN_TOKEN: randomBytes(24).toString('base64url'), COOKIE_SECRET: randomBytes(32).toString('hex'), TOKEN_ENCRYPTION_KEY: `k:${randomBytes(32).toString('base64')}` }
  t.equal(loadConfig(base).appName, PACKAGE_NAME, 'unset, it is the package name')
  t.equal(PACKAGE_NAME, 'wix-install-engine', 'which is this package')
  t.equal(loadConfig({ ...base, APP_NAME: 'Acme Forms' }).appName, 'Acme Forms', 'set, it is used')
  t.throws(() => loadConfig({ ...base, APP_NAME: 'x'.repeat(81) }), { message: 'Invalid configuration: APP_NAME must be at most 80 characters' }, 'too long fails with one line')
})

t.test("the flow's own pages, rendered for the Redirect URL's route", async (t) => {
  const { installFailedPage, waitingPage, cancelledPage } = await import('../src/routes/html.ts')
  const failed = installFailedPage('Acme Forms', 'https://app.example', 'exchange_refused')
  t.match(failed, /<h1>The installation could not be completed<\/h1>/, 'a failed install says so')
  t.match(failed, /Acme Forms could not be installed on your site: Wix did not accept the confirmation of this installation\./, 'in words, by the app\'s name')
  t.match(failed, /<a class="button" href="https:\/\/app\.example\/wix\/install">Start the installation again<\/a>/, 'with the way to start again')
  t.match(failed, /<code>EXCHANGE_REFUSED<\/code>/, 'and the reason small, for support')
  t.notMatch(failed, /Wix request id|code exchange/, 'not the detail meant for admins')
  const waiting = waitingPage('Acme <Forms>', 'https://app.example/wix/redirect/continue')
  t.match(waiting, /http-equiv="refresh" content="2;url=https:\/\/app\.example\/wix\/redirect\/continue"/, 'the waiting page moves on by itself')
  t.match(waiting, /Acme &lt;Forms&gt;/, 'the app name is escaped')
  t.match(cancelledPage('Acme Forms', 'https://app.example'), /Acme Forms was not installed\./, 'a cancelled install says the app was not installed')
})
