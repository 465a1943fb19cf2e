import { randomBytes } from 'node:crypto'
import type { BrowserContext, Page } from 'playwright-core'
import t from 'tap'
import { request } from 'undici'
import { hasChromium, missingChromium, sandboxInChromium } from './support/chromium.ts'

/** The admin console as a new user meets it, in a real headless Chromium against the sandbox service. */

if (!hasChromium()) {
  t.fail(missingChromium)
} else {
  t.setTimeout(120_000)
  const { url, adminToken, browser } = await sandboxInChromium(t, 'console-browser')

  /** A browser context that records every request it makes and every error its pages log. */
  async function watched(t: { teardown(fn: () => unknown): void }) {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const requests: string[] = []
    const errors: string[] = []
    context.on('request', (r) => requests.push(r.url()))
    const page = await context.newPage()
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text())
    })
    page.on('pageerror', (e) => errors.push(e.message))
    return { context, page, requests, errors }
  }

  /** A site owner installs the app through the sandbox consent screen; the instance id it lands with. */
  async function install(context: BrowserContext) {
    const page = await context.newPage()
    await page.goto(`${url}/wix/app-url?token=console-${randomBytes(4).toString('hex')}`)
    await Promise.all([page.waitForURL(/\/\?instanceId=/, { timeout: 30_000 }), page.click('#approve')])
    const instanceId = new URL(page.url()).searchParams.get('instanceId')!
    await page.close()
    return instanceId
  }
  const installationOf = async (instanceId: string) => {
    const res = await request(`${url}/api/installations/${instanceId}`, { headers: { authorization: `Bearer ${adminToken}` } })
    return (await res.body.json()) as { id: string; state: string }
  }
  const signIn = async (page: Page) => {
    await page.goto(`${url}/console`)
    await page.fill('#token', adminToken)
    await Promise.all([page.waitForURL(`${url}/console`), page.click('form.sign-in button[type=submit]')])
  }

  t.test('sign in, find an installation, watch it finish, sign out', async (t) => {
    const owner = await browser.newContext()
    t.teardown(() => owner.close())
    const instanceId = await install(owner)
    const { id } = await installationOf(instanceId)
    const { context, page, requests, errors } = await watched(t)

    await page.goto(`${url}/console`)
    t.equal(await page.locator('input[type=password]#token').count(), 1, '/console offers a password field')
    t.equal(await page.locator('label[for=token]').textContent(), 'Admin token', 'labelled')
    t.notOk((await page.content()).includes(instanceId), 'and shows no installation data before signing in')

    await page.fill('#token', adminToken)
    await Promise.all([page.waitForURL(`${url}/console`), page.click('form.sign-in button[type=submit]')])
    const session = (await context.cookies()).find((c) => c.name === 'wie_console')
    t.ok(session, 'signing in leaves a session cookie')
    t.equal(session?.httpOnly, true, 'HttpOnly')
    t.equal(session?.sameSite, 'Strict', 'SameSite=Strict')
    t.notOk(session?.value.includes(adminToken), 'that is not the token')
    t.ok(session && session.expires > Date.now() / 1000, 'and expires')

    t.equal(await page.textContent('h1'), 'Installations', 'the list opens')
    t.ok(await page.locator(`td code:text-is("${instanceId}")`).count(), 'showing the fresh installation')
    await page.fill('#f-q', instanceId)
    await Promise.all([page.waitForURL(/q=/), page.click('form.filters button[type=submit]')])
    t.equal(await page.locator('tbody tr').count(), 1, 'searching by its instance id finds it alone')
    for (const control of await page.locator('form.filters select, form.filters input').all()) {
      const idAttr = await control.getAttribute('id')
      t.equal(await page.locator(`label[for="${idAttr}"]`).count(), 1, `the filter #${idAttr} has a label`)
    }

    await Promise.all([page.waitForURL(`${url}/console/installations/${id}`), page.click(`a[href="/console/installations/${id}"]`)])
    const svg = page.locator('svg.diagram')
    t.equal(await svg.count(), 1, 'its page draws an SVG')
    const names = await svg.locator('g.state > text:first-of-type').allTextContents()
    for (const state of ['AppUrlHit', 'Authorizing', 'CodeReceived', 'Tokened', 'SetupIncomplete', 'Finished']) {
      t.ok(names.includes(state), `with ${state} by name`)
    }
    const current = svg.locator('[aria-current="true"]')
    t.equal(await current.count(), 1, 'one state marked aria-current')
    t.equal(await current.getAttribute('data-state'), 'SetupIncomplete.waiting', 'the one it is in')
    const history = await page.locator('section[aria-labelledby=history-h] tbody tr td:nth-child(3)').allTextContents()
    t.same(history, ['— → AppUrlHit.redirecting', 'AppUrlHit.redirecting → Authorizing', 'Authorizing → CodeReceived', 'CodeReceived → Tokened', 'Tokened → SetupIncomplete.waiting'],
      'the transitions taken are listed')

    // The finish call comes from elsewhere (the app's backend): the open page follows without a reload.
    await page.evaluate('window.notReloaded = true')
    const finish = await request(`${url}/api/installations/${id}/finish`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } })
    t.equal(finish.statusCode, 200, 'the app finishes the installation through the API')
    await finish.body.text()
    await page.waitForSelector('svg.diagram [aria-current="true"][data-state="Finished"]', { timeout: 15_000 })
    t.pass('the open page marks Finished as current')
    t.equal(await page.evaluate('window.notReloaded'), true, 'without a reload')
    t.match(await page.textContent('#live-status'), /now Finished/, 'and says so to screen readers')

    await Promise.all([page.waitForURL(`${url}/console`), page.click('nav button:text("Sign out")')])
    t.equal(await page.locator('#token').count(), 1, 'signing out shows the sign-in form')
    t.notOk((await context.cookies()).some((c) => c.name === 'wie_console'), 'and drops the cookie')
    await page.goto(`${url}/console/installations/${id}`)
    t.equal(await page.locator('svg').count(), 0, 'the installation page without a session draws nothing')
    t.notOk((await page.content()).includes(instanceId), 'and shows none of its data')

    t.same(requests.filter((r) => !r.startsWith(`${url}/`)), [], `no request left the origin (${requests.length} made)`)
    t.same(errors, [], 'and the pages logged no error')
  })

  t.test('the keyboard alone finishes an installation, confirmed', async (t) => {
    const owner = await browser.newContext()
    t.teardown(() => owner.close())
    const instanceId = await install(owner)
    const { id } = await installationOf(instanceId)
    const { page, errors } = await watched(t)
    await signIn(page)
    await page.goto(`${url}/console/installations/${id}`)

    await page.focus('.actions summary')
    t.equal(await page.evaluate('document.activeElement?.textContent'), 'Finish…', 'the finish action takes the focus')
    await page.keyboard.press('Enter')
    t.ok(await page.locator('.actions details[open]').count(), 'Enter opens its confirmation')
    t.equal((await installationOf(instanceId)).state, 'SetupIncomplete', 'which by itself changes nothing')
    await page.keyboard.press('Tab')
    t.equal(await page.evaluate('document.activeElement?.textContent'), 'Yes, finish it', 'Tab reaches the confirm button')
    await Promise.all([page.waitForURL(/done=finish/), page.keyboard.press('Enter')])
    t.equal((await installationOf(instanceId)).state, 'Finished', 'Enter finishes the installation')
    t.match(await page.textContent('[role=status]'), /Done:/, 'and the page says it is done')
    t.same(errors, [], 'with no error logged')
  })
}
