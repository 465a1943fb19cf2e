import { randomBytes } from 'node:crypto'
import t from 'tap'
import { freshDatabase } from './support/database.ts'
import { testClock } from './support/engine.ts'
import { siteOwner } from './support/flow.ts'
import { waitUntil } from './support/process.ts'
import { startService, type Service } from './support/service.ts'

/**
 * Tokens for every installation: the refresh token where the legacy flow left one, else client
 * credentials, cached to `expires_in`; a dead refresh token falls back once; a wrong app secret is
 * a loud configuration fault that never marks an installation.
 */

const db = await freshDatabase()
t.teardown(db.drop)

const grants = (service: Service) => service.wix.requests
  .filter((r) => r.endpoint === 'oauth/access' || r.endpoint === 'oauth2/token')
  .map((r) => (r.body as { grant_type?: string }).grant_type)

async function legacyInstall(service: Service) {
  const owner = siteOwner(service)
  await owner.openAppUrl(`token-${Math.random()}`)
  const id = await owner.installationId()
  await owner.callback(await owner.approve())
  await service.app.engine.waitFor(id, (w) => w.statePath === 'SetupIncomplete.waiting', 5_000)
  return (await service.api('GET', `/api/installations/${id}`)).json
}

t.test('a webhook installation\'s token is cached until shortly before expires_in', async (t) => {
  const clock = testClock(new Date())
  const service = await startService(t, { db, now: clock.now })
  const { instanceId } = await service.wix.installApp()
  await waitUntil('installed', async () => (await service.api('GET', `/api/installations/${instanceId}`)).json.state === 'SetupIncomplete', 5_000)
  const first = await service.api('POST', `/api/installations/${instanceId}/access-token`)
  t.equal(first.status, 200, 'a token is served')
  t.same(grants(service), ['client_credentials'], 'the one minted when the install was confirmed')

  clock.advance(3 * 60 * 60_000)
  const later = await service.api('POST', `/api/installations/${instanceId}/access-token`)
  t.equal(later.json.accessToken, first.json.accessToken, 'three hours on, the same token is still served')
  t.same(grants(service), ['client_credentials'], 'without asking Wix')

  clock.advance(59 * 60_000)
  const renewed = await service.api('POST', `/api/installations/${instanceId}/access-token`)
  t.not(renewed.json.accessToken, first.json.accessToken, 'within two minutes of its 4-hour expiry a new one is minted')
  t.same(grants(service), ['client_credentials', 'client_credentials'], 'by client credentials: there is no refresh token')
  const [row] = await service.app.sql`select refresh_token from wix_install.instance_tokens where instance_id = ${instanceId}`
  t.equal(row!.refresh_token, null, 'none is stored for a webhook installation')
})

t.test('a refresh token Wix rejects gets one client-credentials attempt, which keeps the installation working', async (t) => {
  const clock = testClock(new Date())
  const service = await startService(t, { db, now: clock.now })
  const installed = await legacyInstall(service)
  for (const token of service.wix.refreshTokens.keys()) service.wix.revokeRefreshToken(token)
  clock.advance(10 * 60_000)
  const before = grants(service).length
  const res = await service.api('POST', `/api/installations/${installed.id}/access-token`)
  t.equal(res.status, 200, 'the access-token route still answers 200')
  t.equal(service.wix.instanceOfToken(res.json.accessToken), installed.instanceId, 'with a token Wix accepts for the instance')
  t.same(grants(service).slice(before), ['refresh_token', 'client_credentials'], 'after one refusal of the refresh token, one client-credentials call')
  const [row] = await service.app.sql`select refresh_token from wix_install.instance_tokens where instance_id = ${installed.instanceId}`
  t.equal(row!.refresh_token, null, 'the dead refresh token is dropped')
  t.equal((await service.api('GET', `/api/installations/${installed.id}`)).json.state, 'SetupIncomplete', 'and the installation is not marked')

  clock.advance(10 * 60_000)
  const next = grants(service).length
  await service.api('POST', `/api/installations/${installed.id}/access-token`)
  t.same(grants(service).slice(next), [], 'the client-credentials token is cached like any other')
})

t.test('a wrong or rotated WIX_APP_SECRET never marks an installation: it is surfaced loudly instead', async (t) => {
  const clock = testClock(new Date())
  const shared = { COOKIE_SECRET: randomBytes(32).toString('hex'), TOKEN_ENCRYPTION_KEY: `k1:${randomBytes(32).toString('base64')}` }
  const good = await startService(t, { db, now: clock.now, env: shared })
  const legacy = await legacyInstall(good)
  const { instanceId } = await good.wix.installApp()
  await waitUntil('installed', async () => (await good.api('GET', `/api/installations/${instanceId}`)).json.state === 'SetupIncomplete', 5_000)

  // The same database and the same Wix, with a service whose app secret is wrong; the good one's
  // runner stops, so only the bad one acts on what follows.
  await good.app.engine.runner.stop(0)
  const bad = await startService(t, { db, now: clock.now, fake: good.fake, env: { ...shared, WIX_APP_SECRET: 'rotated-secret-0123456789' } })
  clock.advance(5 * 60 * 60_000)
  for (const id of [legacy.id, instanceId]) {
    const res = await bad.api('POST', `/api/installations/${id}/access-token`)
    t.equal(res.status, 502, `${id}: 502 ${JSON.stringify(res.json)}`)
    t.equal(res.json.code, 'WIX_CREDENTIALS_REJECTED', 'named WIX_CREDENTIALS_REJECTED')
    t.match(res.json.message, /WIX_APP_SECRET/, 'naming what to fix')
    t.notMatch(JSON.stringify(res.json), /rotated-secret/, 'and never the secret itself')
  }
  const finish = await bad.api('POST', `/api/installations/${legacy.id}/finish`)
  t.not(finish.json.state, 'ReinstallRequired', 'a finish that cannot mint a token does not mark the installation either')
  for (const id of [legacy.id, instanceId]) {
    const state = (await bad.api('GET', `/api/installations/${id}`)).json.state
    t.ok(['SetupIncomplete'].includes(state), `${id} is still ${state}, never ReinstallRequired`)
  }
  const stats = (await bad.api('GET', '/api/stats')).json
  t.equal(stats.wixCredentials.status, 'rejected', '/api/stats says the credentials are rejected')
  t.ok(stats.wixCredentials.rejections >= 2, 'and counts the refusals')
  const metrics = await (await fetch(`${bad.url}/metrics`)).text()
  t.match(metrics, /wix_install_wix_client_rejections_total [1-9]/, 'a metric counts them')
  t.ok(bad.logs.some((l) => l.includes('"level":50') && l.includes('WIX_APP_SECRET is wrong or was rotated')), 'and an error line says what to fix')
  t.notOk(bad.logs.some((l) => l.includes('rotated-secret')), 'with no secret in any log line')

  const fixed = await good.api('POST', `/api/installations/${legacy.id}/access-token`)
  t.equal(fixed.status, 200, 'with the right secret, the same installation gets its token again')
})
