import t, { type Test } from 'tap'
import { request } from 'undici'
import { freshDatabase } from './support/database.ts'
import { ADMIN_TOKEN, startService } from './support/service.ts'

/** The console's not-found and error pages: its own layout, and what to try next. */

const db = await freshDatabase()
t.teardown(db.drop)
const service = await startService(t, { db })

/** Signs in over real HTTP; returns a GET that carries the session cookie. */
async function signedIn() {
  const res = await request(`${service.url}/console/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: service.url },
    body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
  })
  await res.body.text()
  const cookie = [res.headers['set-cookie'] ?? []].flat().map((c) => c.split(';')[0]).join('; ')
  return async (path: string, init: { method?: 'GET' | 'POST'; form?: Record<string, string> } = {}) => {
    const page = await request(`${service.url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        accept: 'text/html', cookie,
        ...(init.form && { 'content-type': 'application/x-www-form-urlencoded', origin: service.url }),
      },
      body: init.form && new URLSearchParams(init.form).toString(),
    })
    return { status: page.statusCode, body: await page.body.text() }
  }
}

const inLayout = (t: Test, body: string, what: string, o = { signOut: true }) => {
  t.match(body, '<link rel="stylesheet" href="/console/assets/console.css">', `${what}: the console's stylesheet`)
  t.match(body, /<header><nav aria-label="Console">/, 'its navigation')
  if (o.signOut) t.match(body, /<form method="post" action="\/console\/sign-out">/, 'and its sign-out form')
}

t.test('an unknown installation id: a 404 in the console layout, offering a search and the recent installations', async (t) => {
  const get = await signedIn()
  const id = '0d6b5f3e-1b2c-4d5e-8f90-123456789abc'
  const page = await get(`/console/installations/${id}`)
  t.equal(page.status, 404, 'a 404')
  inLayout(t, page.body, 'the page has the console layout')
  t.match(page.body, /<h1>Not found<\/h1>/, 'says what happened')
  t.match(page.body, `No installation ${id}`, 'names the id')
  t.match(page.body, 'INSTALLATION_NOT_FOUND', 'and the code')
  t.match(page.body, /<form method="get" action="\/console"[^>]*role="search"/, 'offers the search form')
  t.match(page.body, new RegExp(`<input id="e-q" name="q" value="${id}"`), 'filled in with the id asked for')
  t.match(page.body, `<a href="/console?q=${id}">`, 'a link that searches for it')
  t.match(page.body, '<a href="/console">The recent installations</a>', 'and the recent installations')
})

t.test('an unknown console page and a refused action use the layout too', async (t) => {
  const get = await signedIn()
  const unknown = await get('/console/nowhere')
  t.equal(unknown.status, 404, 'an unknown console page is a 404')
  // No console route matched, so no session was read: the layout without its sign-out form.
  inLayout(t, unknown.body, 'the unknown page', { signOut: false })
  t.match(unknown.body, /<form method="get" action="\/console"[^>]*role="search"/, 'with the search form')

  const refused = await get('/console/installations/0d6b5f3e-1b2c-4d5e-8f90-123456789abc/finish', {
    method: 'POST', form: { csrf: 'forged', confirm: 'yes' },
  })
  t.equal(refused.status, 403, 'a forged CSRF token is refused')
  inLayout(t, refused.body, 'the refusal')
  t.match(refused.body, 'CONSOLE_FORBIDDEN', 'naming its code')
})
