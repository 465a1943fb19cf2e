import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { startFakeWix } from '../src/sandbox/fake-wix.ts'
import { freshDatabase } from './support/database.ts'
import { effectsOf } from './support/engine.ts'
import { siteOwner } from './support/flow.ts'
import { startServerProcess, waitUntil } from './support/process.ts'
import { freePort, startService, wixEnv } from './support/service.ts'

/** SIGTERM during an effect: the process exits cleanly, hands its work over, another finishes it. */

const db = await freshDatabase()
t.teardown(db.drop)

/** What Wix holds: the code exchange itself, or (`lookup`) the lookup of whose its tokens are, once it answered. */
const HOLDS = {
  exchange: { what: 'Wix holds the exchange', endpoint: 'oauth/access', grant: 'authorization_code' },
  lookup: { what: 'Wix answered the exchange and holds the instance lookup', endpoint: 'oauth2/token-info' },
} as const

/** A server process and a browser whose code exchange Wix holds: the browser waits up to `redirectWaitMs`. */
async function heldExchange(t: Test, redirectWaitMs: number, holds: keyof typeof HOLDS = 'exchange') {
  const fake = await startFakeWix({ appId: 'shutdown-app', appSecret: randomBytes(12).toString('hex') })
  t.teardown(fake.close)
  const secrets = { COOKIE_SECRET: randomBytes(32).toString('hex'), TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64') }
  const port = await freePort()
  const server = await startServerProcess(t, {
    ...secrets,
    ...wixEnv(fake, port),
    DATABASE_URL: db.url,
    REDIRECT_WAIT_MS: String(redirectWaitMs),
    SHUTDOWN_GRACE_MS: '300',
  }, port)
  const { what, ...held } = HOLDS[holds]
  fake.wix.failNext({ ...held, hang: true })
  const owner = siteOwner({ url: server.url } as never)
  await owner.openAppUrl(`shutdown-${randomBytes(4).toString('hex')}`)
  const id = await owner.installationId()
  const approved = await owner.approve()
  const back = owner.callback(approved)
  await waitUntil(what, () => fake.wix.requests.some((r) => r.endpoint === held.endpoint && r.status === 0))
  return { fake, secrets, server, id, back, code: approved.searchParams.get('code')! }
}

t.test('SIGTERM while Wix holds the code exchange', async (t) => {
  const { fake, secrets, server, id: installationId, back: waited } = await heldExchange(t, 100)
  t.equal((await waited).status, 202, 'the browser waits while Wix holds the exchange')

  const started = Date.now()
  server.child.kill('SIGTERM')
  const exit = await server.exited
  t.equal(exit.code, 0, 'SIGTERM ends the process with exit code 0')
  t.ok(Date.now() - started < 10_000, 'within its grace period, not at a hard timeout')
  const [job] = await effectsOf(db.sql, installationId, 'exchangeCode')
  t.match(job, { status: 'pending', owner: null }, 'its unfinished exchange is handed back, not left leased')

  const survivor = await startService(t, { db, fake, env: secrets })
  const done = await survivor.app.engine.waitFor(installationId, (w) => w.state !== 'CodeReceived', 10_000)
  t.equal(done?.state, 'Tokened', 'another instance picks it up at once and completes the exchange')
  const exchanged = fake.wix.requests.filter((r) => r.endpoint === 'oauth/access' && r.status === 200)
  t.equal(exchanged.length, 1, 'Wix exchanged the code once')
})

t.test('SIGTERM while a browser waits on its exchange: it is answered at once with the page that checks again', async (t) => {
  // The browser would wait a minute: longer than the process may take to shut down (25 s).
  const { server, id, back: waiting } = await heldExchange(t, 60_000)
  server.child.kill('SIGTERM')
  const page = await waiting
  t.equal(page.status, 202, 'the waiting browser is answered, not cut off')
  t.match(page.body, `/wix/redirect/continue?installation=${id}`, 'with the page that checks again (on whichever instance answers)')
  const exit = await server.exited
  t.equal(exit.code, 0, 'and the process ends cleanly, not at its hard shutdown timeout (exit 1)')
  const [row] = await db.sql`select state from wix_engine.workflows where id = ${id}`
  t.equal(row?.state, 'CodeReceived', 'nothing was sent on the browser\'s behalf: the installation still awaits its exchange')
})

t.test("SIGTERM once Wix answered the exchange, while it holds the instance lookup: the tokens are held, and another instance files them", async (t) => {
  const { fake, secrets, server, id, back: waited, code } = await heldExchange(t, 100, 'lookup')
  t.equal((await waited).status, 202, 'the browser waits while Wix holds the lookup')
  server.child.kill('SIGTERM')
  t.equal((await server.exited).code, 0, 'SIGTERM ends the process with exit code 0')
  // The run is aborted past the grace period: its tokens, in its memory only, are held before it ends.
  const held = await db.sql`select 1 from wix_install.exchanged_tokens where workflow_id = ${id}`
  t.equal(held.length, 1, 'the aborted run held the tokens before the process exited')

  const survivor = await startService(t, { db, fake, env: secrets })
  const done = await survivor.app.engine.waitFor(id, (w) => w.state !== 'CodeReceived', 10_000)
  t.equal(done?.state, 'Tokened', 'another instance files them and moves the installation on')
  const sent = fake.wix.requests.filter((r) => (r.body as { code?: string }).code === code)
  t.same(sent.map((r) => r.status), [200], 'the code reached Wix once: the survivor did not spend it again')
  t.equal((await db.sql`select 1 from wix_install.exchanged_tokens where workflow_id = ${id}`).length, 0, 'and no held copy is left')
})
