import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { throwawayCluster } from '../chaos/cluster.ts'
import { drive, type Observations } from '../chaos/driver.ts'
import { prng } from '../chaos/prng.ts'
import { serverPool } from '../chaos/servers.ts'
import { FAILURE_STATES } from '../machines/installation.ts'
import { connect } from '../src/db/connect.ts'
import { migrate } from '../src/db/migrate.ts'
import { startFakeWix } from '../src/sandbox/fake-wix.ts'
import { builtEntry } from './support/build.ts'
import { isHealthy, waitUntil } from './support/process.ts'
import { freePort } from './support/service.ts'

/**
 * A database restart never ends a process: Postgres crashes (`pg_ctl -m immediate`) three times
 * in 20 s while six browsers install the app through two server processes. It runs on a
 * throwaway cluster of its own (chaos/cluster.ts), never on the shared server.
 */

const canRun = process.getuid?.() === 0 && existsSync('/usr/lib/postgresql')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('three Postgres crashes in 20 s under six browser flows on two instances', {
  skip: canRun ? false : 'needs root and the PostgreSQL server binaries (initdb) to start a throwaway cluster',
}, async (t) => {
  const [pgPort, portA, portB] = [await freePort(), await freePort(), await freePort()]
  const cluster = throwawayCluster(pgPort!)
  t.teardown(() => cluster.destroy())
  cluster.init()
  await cluster.start()
  const admin = connect(cluster.url, { max: 1 })
  await admin.unsafe('create database crashes')
  await admin.end()
  const dbUrl = cluster.url.replace(/\/postgres$/, '/crashes')
  const setup = connect(dbUrl, { max: 1 })
  await migrate(setup)
  await setup.end()

  const appSecret = randomBytes(16).toString('hex')
  const fake = await startFakeWix({ appId: 'crash-app', appSecret })
  t.teardown(fake.close)
  const work = mkdtempSync(join(tmpdir(), 'wie-crashes-'))
  const logFile = join(work, 'servers.log')
  const pool = serverPool({
    server: await builtEntry('src/server.ts'),
    ports: [portA!, portB!],
    logFile,
    env: {
      DATABASE_URL: dbUrl, WIX_APP_ID: 'crash-app', WIX_APP_SECRET: appSecret, WIX_WWW_URL: fake.url, WIX_API_URL: fake.url,
      ADMIN_TOKEN: randomBytes(18).toString('hex'), COOKIE_SECRET: randomBytes(32).toString('hex'),
      TOKEN_ENCRYPTION_KEY: `k1:${randomBytes(32).toString('base64')}`, LOG_LEVEL: 'warn',
      AUTO_FINISH: 'true', REDIRECT_WAIT_MS: '2000', SHUTDOWN_GRACE_MS: '500', RATE_LIMIT_PER_MINUTE: '0',
    },
  })
  t.teardown(async () => {
    await pool.stopAll(2_000)
    if (t.passing()) rmSync(work, { recursive: true, force: true })
    else t.comment(`server logs kept in ${logFile}`)
  })
  pool.startAll()
  for (const url of pool.urls) await waitUntil(`${url} is healthy`, () => isHealthy(url), 60_000)

  // Six browsers install again and again until the crashes are over.
  const random = prng(26)
  const seen: Observations = { responses: [], networkErrors: 0, states: [], outcomes: {}, waited: [], detours: 0 }
  let crashing = true
  let started = 0
  const browsers = Array.from({ length: 6 }, async () => {
    while (crashing) {
      const outcome = await drive(started++, pool.urls, fake.url, seen, random)
      seen.outcomes[outcome] = (seen.outcomes[outcome] ?? 0) + 1
    }
  })
  for (let crash = 0; crash < 3; crash++) {
    await sleep(3_000 + random() * 2_000)
    await cluster.stop()
    await sleep(1_000)
    await cluster.start()
  }
  crashing = false
  t.comment(`crashed Postgres 3 times while ${started} installs were started`)

  // The 30 s counts from the last crash: nobody restarts anything for the service.
  const back = Date.now()
  for (const url of pool.urls) {
    await waitUntil(`${url} is healthy again`, () => isHealthy(url), Math.max(1, 30_000 - (Date.now() - back)))
  }
  t.pass('both instances answer /healthz 200 within 30 s of the last crash')
  await Promise.all(browsers)
  t.same(pool.unexpected, [], 'neither server process exited on its own')
  t.notMatch(readFileSync(logFile, 'utf8'), /unhandled|uncaught/i, 'and none logged an unhandled rejection')

  const sql = connect(dbUrl, { max: 2 })
  t.teardown(() => sql.end({ timeout: 1 }))
  const ended = ['Finished', ...FAILURE_STATES]
  const unfinished = () => sql<{ id: string; state: string }[]>`
    select id, state from wix_engine.workflows where machine = 'installation' and not (state = any(${ended}::text[]))`
  await waitUntil('every install started has ended', async () => (await unfinished()).length === 0, 120_000)
    .catch(async () => t.fail(`installs still under way: ${JSON.stringify(await unfinished())}`))
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from wix_engine.workflows where machine = 'installation'`
  t.ok(n >= 6, `${n} installs started; every one is Finished or failed`)
  const [unexplained] = await sql<{ n: number }[]>`
    select count(*)::int as n from wix_engine.workflows
    where machine = 'installation' and state <> 'Finished' and (reason is null or reason = '')`
  t.equal(unexplained!.n, 0, 'every failed install says why')
  t.same(await sql`select kind, name from wix_engine.jobs where status = 'dead'`, [], 'no job was killed by a crash')

  const fresh = await Promise.all([1, 2].map((i) => drive(10_000 + i, pool.urls, fake.url, seen, random)))
  t.same(fresh, ['sent-on', 'sent-on'], 'fresh installs after the crashes reach the app')
  t.comment(`as the browsers saw them: ${JSON.stringify(seen.outcomes)}`)
})
