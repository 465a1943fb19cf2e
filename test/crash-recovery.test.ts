import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { startFakeWix } from '../src/sandbox/fake-wix.ts'
import { freshDatabase } from './support/database.ts'
import { effectsOf } from './support/engine.ts'
import { siteOwner } from './support/flow.ts'
import { startServerProcess, waitUntil } from './support/process.ts'
import { freePort, startService, wixEnv, type FakeWixServer } from './support/service.ts'

/**
 * kill -9 mid-exchange: a real server process is killed while Wix holds its code exchange. Its
 * lease is no longer renewed, so within seconds (no clock is moved) a survivor — or the killed
 * instance, restarted — takes the job over and the installation completes.
 */

const db = await freshDatabase()
t.teardown(db.drop)

/**
 * Where the instance dies: while Wix holds the exchange (`exchange`, the code not spent); once Wix
 * has spent the code and holds only its answer (`answer`); or once it has the tokens, while Wix
 * holds the lookup of whose they are (`lookup`: they are in its memory only, not yet filed).
 */
type KilledAt = 'exchange' | 'answer' | 'lookup'
const HELD: Record<KilledAt, { what: string; endpoint: 'oauth/access' | 'oauth2/token-info'; failure: object }> = {
  exchange: { what: 'Wix holds the exchange', endpoint: 'oauth/access', failure: { grant: 'authorization_code', hang: true } },
  answer: { what: 'Wix spent the code and holds its answer', endpoint: 'oauth/access', failure: { grant: 'authorization_code', loseAnswer: 'hold' } },
  lookup: { what: 'Wix answered the exchange and holds the instance lookup', endpoint: 'oauth2/token-info', failure: { hang: true } },
}

/** Starts an install whose exchange (or lookup, see KilledAt) Wix holds, and kills the instance running it. */
async function killedMidExchange(t: Test, fake: FakeWixServer, secrets: Record<string, string>, token: string, at: KilledAt = 'exchange') {
  const port = await freePort()
  const env = { ...secrets, ...wixEnv(fake, port), DATABASE_URL: db.url, REDIRECT_WAIT_MS: '100' }
  // The shortest lease the service allows: the job it dies holding is free again 2 s after its last renewal.
  const { child, exited, url } = await startServerProcess(t, { ...env, JOB_LEASE_MS: '2000' }, port)
  const held = HELD[at]
  fake.wix.failNext({ endpoint: held.endpoint, ...held.failure })
  const owner = siteOwner({ url } as never)
  await owner.openAppUrl(token)
  const back = await owner.approve()
  const page = await owner.callback(back)
  t.equal(page.status, 202, 'the browser waits while Wix holds the exchange')
  const code = back.searchParams.get('code')!
  await waitUntil(held.what, () =>
    fake.wix.requests.some((r) => r.endpoint === held.endpoint && r.status === 0) && (at === 'exchange' || fake.wix.issuedCodes.get(code)!.used))
  child.kill('SIGKILL')
  t.equal((await exited).signal, 'SIGKILL', 'the instance is killed mid-exchange')
  const [installation] = await db.sql`select id from wix_engine.workflows where state = 'CodeReceived'`
  const [job] = await effectsOf(db.sql, installation!.id, 'exchangeCode')
  t.equal(job?.status, 'running', 'its exchange is left leased to the dead instance')
  return { id: installation!.id as string, owner, back, env, port }
}

function exchangedOnce(t: Test, fake: FakeWixServer, back: URL) {
  const code = back.searchParams.get('code')
  const calls = fake.wix.requests.filter((r) => (r.body as { code?: string }).code === code)
  t.ok(calls.length <= 2, `the code was sent to Wix at most twice (${calls.length})`)
  t.equal(calls.filter((r) => r.status === 200).length, 1, 'Wix exchanged the code exactly once')
}

t.test('an instance killed during the code exchange: a survivor finishes it within seconds', async (t) => {
  const fake = await startFakeWix({ appId: 'crash-app', appSecret: randomBytes(12).toString('hex') })
  t.teardown(fake.close)
  const secrets = { COOKIE_SECRET: randomBytes(32).toString('hex'), TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64') }
  const killed = await killedMidExchange(t, fake, secrets, 'crash-token')

  const survivor = await startService(t, { db, fake, env: secrets })
  // How soon is the chaos run's to measure (takeover p50/max); a loaded machine is slower.
  const done = await survivor.app.engine.waitFor(killed.id, (w) => w.state !== 'CodeReceived', 60_000)
  t.equal(done?.state, 'Tokened', 'the survivor brings the installation out of CodeReceived')
  const next = await killed.owner.browser.get(`${survivor.url}/wix/redirect/continue`)
  t.equal(next.status, 302, "the browser's waiting page is sent on by the survivor")
  t.equal((await db.sql`select state from wix_engine.workflows where id = ${killed.id}`)[0]!.state, 'SetupIncomplete', 'and the installation completed')
  exchangedOnce(t, fake, killed.back)
  const runs = await db.sql`select name, attempt, outcome from wix_engine.job_attempts where workflow_id = ${killed.id} order by attempt`
  t.same(runs.map((r) => [r.name, r.attempt, r.outcome]), [['exchangeCode', 2, 'ok']],
    'the second attempt, by the survivor, succeeded, and no run is recorded as failed: the killed one never finished')
})

t.test('an instance killed during the code exchange: restarted, it finishes it within seconds', async (t) => {
  const fake = await startFakeWix({ appId: 'restart-app', appSecret: randomBytes(12).toString('hex') })
  t.teardown(fake.close)
  const secrets = { COOKIE_SECRET: randomBytes(32).toString('hex'), TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64') }
  const killed = await killedMidExchange(t, fake, secrets, 'restart-token')

  await startServerProcess(t, killed.env, killed.port)
  await waitUntil('the restarted instance completes the installation', async () => {
    const [row] = await db.sql`select state from wix_engine.workflows where id = ${killed.id}`
    return row!.state !== 'CodeReceived'
  })
  const [row] = await db.sql`select state from wix_engine.workflows where id = ${killed.id}`
  t.match(row!.state, /^(Tokened|SetupIncomplete)$/, 'the restarted instance exchanged the code')
  exchangedOnce(t, fake, killed.back)
})

/**
 * Killed once the code is spent and before the tokens are filed: Wix's answer lost on its way, or
 * the tokens in the dead process's memory (the exchange files them straight away, holding a copy
 * only when filing fails: a SIGKILL gives it no chance).
 */
const spentCases: [KilledAt, string][] = [
  ['answer', 'between Wix spending the code and its answer arriving'],
  ['lookup', "between Wix's answer and filing the tokens (the instance lookup held)"],
]
for (const [at, when] of spentCases) t.test(`an instance killed ${when}: the waiting browser gets a new code`, async (t) => {
  const fake = await startFakeWix({ appId: `spent-${at}-app`, appSecret: randomBytes(12).toString('hex') })
  t.teardown(fake.close)
  const secrets = { COOKIE_SECRET: randomBytes(32).toString('hex'), TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64') }
  const code = (back: URL) => back.searchParams.get('code')!
  const killed = await killedMidExchange(t, fake, secrets, `spent-${at}-token`, at)
  t.equal(fake.wix.issuedCodes.get(code(killed.back))!.used, true, 'Wix spent the code before the instance died')
  const instanceId = killed.back.searchParams.get('instanceId')!

  const survivor = await startService(t, { db, fake, env: secrets })
  // The site owner's browser is still on the waiting page: it looks again, as the page does.
  let page = await killed.owner.browser.get(`${survivor.url}/wix/redirect/continue`)
  const pages: string[] = []
  for (let looks = 0; looks < 60 && page.status === 202; looks++) {
    pages.push(page.body)
    page = await killed.owner.browser.get(`${survivor.url}/wix/redirect/continue`)
  }
  t.notOk(pages.some((body) => /could not be completed|problem/i.test(body)), 'the owner never saw an error while waiting')
  t.equal(page.status, 302, 'the waiting browser is redirected')
  const installer = new URL(page.location!)
  t.equal(`${installer.origin}${installer.pathname}`, `${fake.url}/installer/install`, "back through Wix's installer")
  t.equal(installer.searchParams.get('token'), `spent-${at}-token`, "with the App URL's token")
  // Wix's own screen, then the Redirect URL with a new code.
  const approved = await killed.owner.browser.get(page.location!.replace('/installer/install', '/installer/approve'))
  const back = new URL(approved.location!)
  t.equal(back.searchParams.get('instanceId'), instanceId, 'Wix issues a new code for the same site')
  let next = await killed.owner.callback(back)
  for (let looks = 0; looks < 60 && next.status === 202; looks++) next = await killed.owner.browser.get(`${survivor.url}/wix/redirect/continue`)
  t.equal(next.status, 302, 'and the browser is sent on')
  t.equal(next.location, `${survivor.url}/?instanceId=${instanceId}`, 'to the post-install page')

  const rows = await db.sql`select id, state from wix_engine.workflows where id = ${killed.id} or key = ${instanceId}`
  t.same(rows.map((r) => [r.id, r.state]), [[killed.id, 'SetupIncomplete']], 'one installation, the same one, ends SetupIncomplete')
  const codes = [...fake.wix.issuedCodes].filter(([, c]) => c.instanceId === instanceId)
  t.equal(codes.length, 2, 'two codes at Wix')
  t.ok(codes.every(([, c]) => c.used), 'both spent')
  const exchanged = (c: string) => fake.wix.requests.filter((r) => (r.body as { code?: string }).code === c).map((r) => r.status)
  const first = exchanged(code(killed.back))
  t.ok(first.length === 2 && first.filter((status) => status === 200).length <= 1 && first.includes(400),
    `the first code was sent twice, the survivor's try refused: never exchanged twice (${first.join(', ')})`)
  t.same(exchanged(code(back)), [200], 'the new code exchanged once')
  const [tokens] = await db.sql`select count(*)::int as n from wix_install.instance_tokens where instance_id = ${instanceId}`
  t.equal(tokens!.n, 1, 'one set of stored tokens')
  const [held] = await db.sql`select count(*)::int as n from wix_install.exchanged_tokens`
  t.equal(held!.n, 0, 'and none left held')
})
