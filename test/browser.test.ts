import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { hasChromium, missingChromium, sandboxInChromium } from './support/chromium.ts'

/** A real headless Chromium clicks through a sandbox install: real redirects, real cookies, real forms. */

if (!hasChromium()) {
  t.fail(missingChromium)
} else {
  t.setTimeout(120_000)
  const { url, adminToken, dir, browser } = await sandboxInChromium(t, 'browser')

  const api = async (path: string) => {
    const res = await request(`${url}${path}`, { headers: { authorization: `Bearer ${adminToken}` } })
    return { status: res.statusCode, json: (await res.body.json()) as any }
  }
  const wixCalls = async () => {
    const res = await request(`${url}/_sandbox/wix/_control/requests`)
    return ((await res.body.json()) as { endpoint: string; body: { grant_type?: string } | null; status: number }[])
      .map((c) => `${c.endpoint} ${c.body?.grant_type ?? ''} ${c.status}`.trim())
  }

  t.test('Approve on the consent screen installs the app', async (t) => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()

    await page.goto(`${url}/wix/app-url?token=browser-approve`)
    t.equal(new URL(page.url()).pathname, '/_sandbox/wix/installer/install', 'the App URL lands on the sandbox consent screen')
    t.match(await page.textContent('h1'), /Install app on your site/, 'which asks to install the app')
    const stateCookie = (await context.cookies()).find((c) => c.name.startsWith('wix_install_state_'))
    t.ok(stateCookie, 'the browser holds the state cookie')
    t.equal(stateCookie?.httpOnly, true, 'out of reach of scripts')
    t.equal(stateCookie?.sameSite, 'Lax', 'and sent on the top-level redirect back')

    await Promise.all([page.waitForURL(/\/\?instanceId=/, { timeout: 30_000 }), page.click('#approve')])
    const landed = new URL(page.url())
    t.equal(`${landed.origin}${landed.pathname}`, `${url}/`, 'Approve ends on the post-install page')
    t.equal(await page.textContent('h1'), 'The app is installed', 'which says the app is installed')

    const instanceId = landed.searchParams.get('instanceId')!
    const one = await api(`/api/installations/${instanceId}`)
    t.equal(one.status, 200, 'the installation is found by the instanceId in the URL')
    t.equal(one.json.state, 'SetupIncomplete', 'and is SetupIncomplete, waiting for the app to finish')
    t.same(await wixCalls(), ['oauth/access authorization_code 200', 'oauth2/token-info  200'],
      'the sandbox Wix exchanged the code once, and was asked whose the tokens are')
    t.notOk((await context.cookies()).some((c) => c.name.startsWith('wix_install_state_')), 'the spent state cookie is gone from the browser')

    const shot = join(dir, 'installed.png')
    await page.screenshot({ path: shot })
    const png = await readFile(shot)
    t.ok(png.length > 1000, 'a screenshot of the page was taken')
    t.same([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'and it is a PNG')
  })

  t.test('Cancel on the consent screen abandons the installation', async (t) => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    const callsBefore = (await wixCalls()).length

    await page.goto(`${url}/wix/app-url?token=browser-cancel`)
    await Promise.all([page.waitForURL(/\/wix\/redirect\?/, { timeout: 30_000 }), page.click('#cancel')])
    t.equal(await page.textContent('h1'), 'Installation cancelled', 'the browser is told the installation was cancelled')
    t.match(await page.textContent('body'), /not installed/, 'and that the app was not installed')

    const abandoned = await api('/api/installations?state=ConsentAbandoned')
    t.equal(abandoned.json.items.length, 1, 'one installation is ConsentAbandoned')
    const one = await api(`/api/installations/${abandoned.json.items[0].id}`)
    t.equal(one.json.failure?.reason, 'consent_declined', 'because the site owner declined')
    t.equal((await wixCalls()).length, callsBefore, 'and no call reached Wix')
  })

  t.test('a button on the sandbox control panel makes the next install fail', async (t) => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()

    await page.goto(`${url}/_sandbox/wix`)
    t.equal(page.url(), `${url}/_sandbox/wix/`, 'the panel opens')
    t.equal(await page.textContent('h1'), 'Sandbox Wix control panel', 'and says what it is')
    await Promise.all([page.waitForURL(`${url}/_sandbox/wix/`), page.click('#exchange-400')])
    t.match(await page.textContent('#pending'), /oauth\/access \(authorization_code\): 400/, 'pressing a switch comes back to the panel, listing the queued failure')

    await page.goto(`${url}/wix/app-url?token=browser-refused`)
    await Promise.all([page.waitForURL(/\/wix\/redirect\?/, { timeout: 30_000 }), page.click('#approve')])
    t.equal(await page.textContent('h1'), 'The installation could not be completed', 'the site owner is told the install failed')
    const failed = await api('/api/installations?state=ExchangeFailed')
    t.equal(failed.json.items.length, 1, 'the installation is ExchangeFailed')

    await page.goto(`${url}/_sandbox/wix/`)
    t.match(await page.textContent('#calls'), /code exchanges: 2,/, 'the panel counts both code exchanges it saw')
    t.equal(await page.textContent('#pending'), 'None.', 'and no failure is left queued')
  })
}
