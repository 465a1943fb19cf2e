import t from 'tap'
import { createBrowser, type Page } from './support/browser.ts'
import { freshDatabase } from './support/database.ts'
import { startService, type Service } from './support/service.ts'

/**
 * PUBLIC_URL's host is the one the flow's cookies live on. A start opened on another name for the
 * same server (127.0.0.1 when PUBLIC_URL says localhost) goes there first: otherwise its state
 * cookie is set on one host and Wix sends the browser back to the other, which has none.
 */

const db = await freshDatabase()
t.teardown(db.drop)

const PUBLIC_URL = 'http://localhost'

/**
 * A browser that keeps cookies per host, as browsers do. `localhost` resolves to the service under
 * test (connecting to 127.0.0.1 on its port, with the name in the Host header); other hosts are
 * reached as they are.
 */
function hostBrowser(service: Service) {
  const jars = new Map<string, ReturnType<typeof createBrowser>>()
  const port = new URL(service.url).port
  return (url: string, headers: Record<string, string> = {}): Promise<Page> => {
    const u = new URL(url)
    if (!jars.has(u.host)) jars.set(u.host, createBrowser())
    const target = u.hostname === 'localhost' ? `http://127.0.0.1:${port}${u.pathname}${u.search}` : url
    return jars.get(u.host)!.get(target, { host: u.host, ...headers })
  }
}

/** Follows redirects until the browser lands on Wix's installer (or anywhere that is not a redirect). */
async function toInstaller(visit: ReturnType<typeof hostBrowser>, url: string) {
  let page = await visit(url)
  const hops = [url]
  while (page.status === 302 && !page.location!.includes('/installer/')) {
    hops.push(page.location!)
    page = await visit(page.location!)
  }
  return { page, hops }
}

t.test('a start opened on 127.0.0.1 while PUBLIC_URL says localhost installs, real cookies throughout', async (t) => {
  for (const path of ['/wix/app-url?token=wix-token', '/wix/install']) {
    const service = await startService(t, { db, env: { PUBLIC_URL } })
    service.wix.register({ redirectUrl: `${PUBLIC_URL}/wix/redirect` })
    const visit = hostBrowser(service)
    const first = await visit(`${service.url}${path}`)
    t.equal(first.status, 302, `${path} on 127.0.0.1 is a redirect`)
    t.match(first.location, new RegExp(`^${PUBLIC_URL}${path.replace('?', '\\?')}(\\?|&)moved=1$`),
      'to the same path and query on PUBLIC_URL\'s host')
    t.notOk(first.headers['set-cookie'], 'and sets no cookie on the wrong host')

    const { page } = await toInstaller(visit, `${service.url}${path}`)
    t.equal(page.status, 302, 'on PUBLIC_URL\'s host the install starts')
    const installer = new URL(page.location!)
    const approve = new URL(installer.toString().replace('/installer/install', '/installer/approve'))
    const back = (await visit(approve.toString())).location!
    t.match(back, `${PUBLIC_URL}/wix/redirect?`, 'Wix sends the browser back to PUBLIC_URL\'s Redirect URL')
    const done = await visit(back)
    t.equal(done.status, 302, 'where its state cookie is found: the install goes through')
    t.notMatch(done.body, /can no longer be used/, 'and the owner never sees "This installation link can no longer be used"')
  }
})

t.test('the forwarded host counts only from a trusted proxy; a start is moved once at most', async (t) => {
  const trusted = await startService(t, { db, env: { PUBLIC_URL, TRUST_PROXY: '127.0.0.1' } })
  const viaProxy = await createBrowser().get(`${trusted.url}/wix/install`, { 'x-forwarded-host': 'localhost' })
  t.match(viaProxy.location, '/installer/install', 'behind a trusted proxy, X-Forwarded-Host is the host: no detour')

  const untrusted = await startService(t, { db, env: { PUBLIC_URL } })
  const forged = await createBrowser().get(`${untrusted.url}/wix/install`, { 'x-forwarded-host': 'localhost' })
  t.equal(forged.location, `${PUBLIC_URL}/wix/install?moved=1`, 'without TRUST_PROXY the header is not believed')

  // A proxy that rewrites Host (nginx's default) and is not trusted: the moved start stays.
  const again = await createBrowser().get(`${untrusted.url}/wix/install?moved=1`)
  t.match(again.location, '/installer/install', 'a start already moved is served where it arrived, never bounced again')
  t.match(untrusted.logs.join(''), /set PUBLIC_URL to the address browsers use, or TRUST_PROXY/, 'and the log says what to fix')
})
