import t from 'tap'
import { request } from 'undici'
import { freshDatabase } from './support/database.ts'
import { latestInstallationId, siteOwner } from './support/flow.ts'
import { ADMIN_TOKEN, startService } from './support/service.ts'

/** Missing, repeated, oversized and malformed input on every route: a named 4xx, nothing changed. */

const db = await freshDatabase()
t.teardown(db.drop)

t.test('bad input never changes anything and never reaches Wix', async (t) => {
  const service = await startService(t, { db })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const id = await latestInstallationId(service)
  const state = owner.state
  const code = 'c'.repeat(20)
  const instanceId = '8a3f1c1e-2b4d-4c6e-8f00-0123456789ab'
  const fingerprint = async () => db.sql`select id, state, version from wix_engine.workflows order by id`
  const before = await fingerprint()
  const x = (n: number) => 'x'.repeat(n)

  const cases: [string, 'GET' | 'POST', string, number, string, { body?: string; auth?: boolean; type?: string }?][] = [
    ['app-url without a token', 'GET', '/wix/app-url', 400, 'INVALID_REQUEST'],
    ['app-url with an empty token', 'GET', '/wix/app-url?token=', 400, 'INVALID_REQUEST'],
    ['app-url with the token twice', 'GET', '/wix/app-url?token=a&token=b', 400, 'INVALID_REQUEST'],
    ['app-url with an oversized token', 'GET', `/wix/app-url?token=${x(5000)}`, 400, 'INVALID_REQUEST'],
    ['redirect without anything', 'GET', '/wix/redirect', 400, 'INVALID_REQUEST'],
    ['redirect without a state', 'GET', `/wix/redirect?code=${code}&instanceId=${instanceId}`, 400, 'INVALID_REQUEST'],
    ['redirect with a malformed state', 'GET', `/wix/redirect?code=${code}&state=short&instanceId=${instanceId}`, 400, 'INVALID_REQUEST'],
    ['redirect with the state twice', 'GET', `/wix/redirect?code=${code}&state=${state}&state=${state}&instanceId=${instanceId}`, 400, 'INVALID_REQUEST'],
    ['redirect with the code twice', 'GET', `/wix/redirect?code=${code}&code=${code}&state=${state}&instanceId=${instanceId}`, 400, 'INVALID_REQUEST'],
    ['redirect with an oversized code', 'GET', `/wix/redirect?code=${x(3000)}&state=${state}&instanceId=${instanceId}`, 400, 'INVALID_REQUEST'],
    ['redirect without a code', 'GET', `/wix/redirect?state=${state}&instanceId=${instanceId}`, 400, 'INVALID_REQUEST'],
    ['redirect with a malformed instanceId', 'GET', `/wix/redirect?code=${code}&state=${state}&instanceId=not-a-uuid`, 400, 'INVALID_REQUEST'],
    ['redirect with a broken percent-encoding', 'GET', `/wix/redirect?code=%E0%A4%A&state=${state}&instanceId=${instanceId}`, 400, 'INVALID_REQUEST'],
    ['redirect with invalid UTF-8', 'GET', `/wix/redirect?code=%ff%fe&state=${state}&instanceId=${instanceId}`, 400, 'INVALID_REQUEST'],
    ['app-url with a malformed escape', 'GET', '/wix/app-url?token=%zz', 400, 'INVALID_REQUEST'],
    ['app-url with invalid UTF-8', 'GET', '/wix/app-url?token=%ff%fe', 400, 'INVALID_REQUEST'],
    ['install with a malformed escape in a name', 'GET', '/wix/install?%zz=1', 400, 'INVALID_REQUEST'],
    ['continue without a flow cookie', 'GET', '/wix/redirect/continue', 400, 'FLOW_COOKIE_MISSING'],
    ['an installation without the admin token', 'GET', `/api/installations/${id}`, 401, 'UNAUTHORIZED', { auth: false }],
    ['an installation with a malformed id', 'GET', '/api/installations/bad$id', 400, 'INVALID_REQUEST'],
    ['an installation that does not exist', 'GET', '/api/installations/00000000-0000-4000-8000-000000000000', 404, 'INSTALLATION_NOT_FOUND'],
    ['an installation with an oversized id', 'GET', `/api/installations/${x(300)}`, 414, 'INVALID_REQUEST'],
    ['finish without the admin token', 'POST', `/api/installations/${id}/finish`, 401, 'UNAUTHORIZED', { auth: false }],
    ['finish on an unknown installation', 'POST', '/api/installations/nope/finish', 404, 'INSTALLATION_NOT_FOUND'],
    ['finish before the installation is set up', 'POST', `/api/installations/${id}/finish`, 409, 'INSTALLATION_STATE_CONFLICT'],
    ['finish with malformed JSON', 'POST', `/api/installations/${id}/finish`, 400, 'INVALID_REQUEST', { body: '{"oops', type: 'application/json' }],
    ['finish with an oversized body', 'POST', `/api/installations/${id}/finish`, 413, 'PAYLOAD_TOO_LARGE', { body: JSON.stringify({ x: x(70_000) }), type: 'application/json' }],
    ['an unknown route', 'GET', '/wix/nothing-here', 404, 'NOT_FOUND'],
  ]

  for (const [name, method, path, status, code, o = {}] of cases) {
    const res = await request(`${service.url}${path}`, {
      method,
      headers: {
        ...(o.auth !== false && { authorization: `Bearer ${ADMIN_TOKEN}` }),
        ...(o.type && { 'content-type': o.type }),
      },
      body: o.body,
    })
    const body = await res.body.text()
    t.equal(res.statusCode, status, `${name}: answers ${status}`)
    t.match(body, code, `${name}: names ${code}`)
  }
  t.same(await fingerprint(), before, 'no installation was created or changed')
  t.equal(service.wix.requests.length, 0, 'Wix was never called')
  t.notMatch(service.logs.join('\n'), /"level":50/, 'and nothing was logged as a server error')
})
