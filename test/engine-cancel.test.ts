import t from 'tap'
import { freshDatabase } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { waitUntil } from './support/process.ts'
import { startService } from './support/service.ts'

/**
 * An admin cancels an installation while Wix is still answering its code exchange: the exchange
 * is aborted, and nothing it would have done afterwards (store the tokens Wix sends back, move
 * the installation on) lands.
 */

t.test('a cancel during the code exchange aborts it; its tokens never land', async (t) => {
  const db = await freshDatabase()
  t.teardown(db.drop)
  const service = await startService(t, { db, env: { REDIRECT_WAIT_MS: '100' } })
  // Wix answers this exchange — with tokens — only after 1.5 s.
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', delayMs: 1_500 })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const back = await owner.approve()
  t.equal((await owner.callback(back)).status, 202, 'the browser waits while Wix is slow')
  const id = await owner.installationId()
  const exchange = () => service.wix.requests.find((r) => r.endpoint === 'oauth/access')
  await waitUntil('Wix has the exchange', () => exchange() !== undefined)

  const cancelled = await service.api('POST', `/api/installations/${id}/cancel`)
  t.equal(cancelled.status, 200, 'the admin cancel is accepted')
  t.equal(cancelled.json.state, 'Cancelled', 'the installation is Cancelled')

  await waitUntil('Wix has answered', () => exchange()!.status !== 0)
  await service.app.engine.runner.idle()
  const [row] = await db.sql`select state, reason from wix_engine.workflows where id = ${id}`
  t.match(row, { state: 'Cancelled', reason: 'cancelled' }, 'it stays Cancelled')
  const tokens = await db.sql`select 1 from wix_install.instance_tokens`
  t.equal(tokens.length, 0, 'the tokens of the aborted exchange were never stored')
  const [row2] = await db.sql`select effects from wix_engine.workflows where id = ${id}`
  t.same(row2!.effects, [], 'its effect left the row with the cancel')
  t.equal(service.wix.countExchanges(back.searchParams.get('code')!), 1, 'Wix saw the code once: nothing retried it')
  t.ok(service.logs.some((l) => l.includes('cancelled by a transition')), 'the abort is logged')
})
