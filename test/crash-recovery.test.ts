import { randomBytes } from 'node:crypto'
import t from 'tap'
import { startFakeWix } from '../src/sandbox/fake-wix.ts'
import { freshDatabase } from './support/database.ts'
import { testClock } from './support/engine.ts'
import { siteOwner } from './support/flow.ts'
import { startServerProcess, waitUntil } from './support/process.ts'
import { freePort, startService, wixEnv } from './support/service.ts'

/**
 * kill -9 mid-exchange: a real server process is killed while Wix holds its code exchange; a
 * second instance takes the job over once the lease runs out, and the installation completes.
 */

const db = await freshDatabase()
t.teardown(db.drop)

t.test('an instance killed during the code exchange: another finishes the installation', async (t) => {
  const fake = await startFakeWix({ appId: 'crash-app', appSecret: randomBytes(12).toString('hex') })
  t.teardown(fake.close)
  const secrets = { COOKIE_SECRET: randomBytes(32).toString('hex'), TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64') }
  const port = await freePort()
  const { child, exited, url } = await startServerProcess(t, {
    ...secrets,
    ...wixEnv(fake, port),
    DATABASE_URL: db.url,
    REDIRECT_WAIT_MS: '100',
  }, port)

  fake.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', hang: true })
  const owner = siteOwner({ url } as never)
  await owner.openAppUrl('crash-token')
  const back = await owner.approve()
  const page = await owner.callback(back)
  t.equal(page.status, 202, 'the browser waits while Wix holds the exchange')
  await waitUntil('Wix holds the exchange', () => fake.wix.requests.some((r) => r.endpoint === 'oauth/access' && r.status === 0))

  child.kill('SIGKILL')
  t.equal((await exited).signal, 'SIGKILL', 'the first instance is killed mid-exchange')
  const [job] = await db.sql`select status, lease_owner from jobs where kind = 'effect'`
  t.equal(job!.status, 'running', 'its exchange job is left leased to the dead instance')

  const clock = testClock(new Date())
  const survivor = await startService(t, { db, fake, now: clock.now, env: secrets })
  await survivor.app.engine.runner.tick()
  await survivor.app.engine.runner.idle()
  const [stillLeased] = await db.sql`select status from jobs where kind = 'effect'`
  t.equal(stillLeased!.status, 'running', 'the survivor leaves it alone while the lease runs')

  clock.advance(61_000)
  await survivor.app.engine.runner.tick()
  await survivor.app.engine.runner.idle()
  const next = await owner.browser.get(`${survivor.url}/wix/redirect/continue`)
  t.equal(next.status, 302, "the browser's waiting page is sent on by the survivor")
  const [installation] = await db.sql`select state, key from workflows`
  t.equal(installation!.state, 'SetupIncomplete', 'and the installation completed')
  const code = back.searchParams.get('code')
  const answered = fake.wix.requests.filter((r) => (r.body as { code?: string }).code === code && r.status === 200)
  t.equal(answered.length, 1, 'Wix exchanged the code exactly once')
  const attempts = await db.sql`select attempt, outcome from job_attempts order by attempt`
  t.same(attempts.map((a) => [a.attempt, a.outcome]), [[2, 'ok']], 'the second attempt, by the survivor, succeeded')
})
