// npm run test:chaos [-- --installs 300 --seed 7 --concurrency 40]: hundreds of concurrent
// installs on two server processes sharing one throwaway Postgres, while processes are SIGKILLed
// and restarted, Postgres restarts once, and the fake Wix misbehaves. Then the checks, from the
// database and Wix's own counts; exit 1 if any fails.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { connect } from '../src/db/connect.ts'
import { migrate } from '../src/db/migrate.ts'
import { freePort } from '../test/support/service.ts'
import { runChecks, type Check } from './checks.ts'
import { throwawayCluster } from './cluster.ts'
import { drive, type Observations } from './driver.ts'
import type { ChaosReport } from './fake-wix-process.ts'
import { prng } from './prng.ts'
import { serverPool } from './servers.ts'
import { buildForTests, bundled } from '../scripts/test-build.mjs'
import { takeoverClock } from './takeover.ts'

const { values } = parseArgs({ options: { installs: { type: 'string', default: '300' }, seed: { type: 'string', default: '7' }, concurrency: { type: 'string', default: '40' } } })
const installs = Number(values.installs)
const seed = Number(values.seed)
const concurrency = Number(values.concurrency)
const random = prng(seed)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const say = (line: string) => console.log(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}`)
const began = Date.now()

const work = mkdtempSync(join(tmpdir(), 'wie-chaos-'))
const [pgPort, wixPort, portA, portB] = [await freePort(), await freePort(), await freePort(), await freePort()]
const cluster = throwawayCluster(pgPort!)
const appSecret = randomBytes(16).toString('hex')
const adminToken = randomBytes(18).toString('hex')
const cookieSecret = randomBytes(32).toString('hex')
const tokenKey = randomBytes(32).toString('base64')
let fake: ChildProcess | undefined
let pool: ReturnType<typeof serverPool> | undefined

// Nothing may outlive the suite: not on success, not on failure, not on Ctrl-C or a CI timeout.
let cleaned = false
function cleanUp() {
  if (cleaned) return
  cleaned = true
  pool?.killAll()
  fake?.kill('SIGKILL')
  cluster.destroy()
}
process.on('exit', cleanUp)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping the servers, the fake Wix and Postgres; logs kept in ${work}`)
    cleanUp()
    process.exit(130)
  })
}

/** One request; `status` 0 with `failure` when nothing answered (refused: not listening yet). */
async function probe(url: string, headers: Record<string, string> = {}, timeoutMs = 6_000) {
  const started = Date.now()
  try {
    const res = await request(url, { headers, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
    await res.body.dump()
    return { status: res.statusCode, retryAfter: res.headers['retry-after'], ms: Date.now() - started }
  } catch (err) {
    const failure = (err as { code?: string }).code === 'ECONNREFUSED' ? 'refused' : 'timeout'
    return { status: 0, retryAfter: undefined, ms: Date.now() - started, failure }
  }
}
const healthy = (url: string) => probe(`${url}/healthz`)

/**
 * Polls `ok` until it holds. An attempt that does not answer in 10 s counts as "not yet": a
 * postgres.js connection can hang for good after a server restart (porsager/postgres#1193), and
 * a hung check must end in a clear timeout, never in a run that waits forever.
 */
async function until(what: string, ok: () => Promise<boolean>, ms: number) {
  const end = Date.now() + ms
  let last = 'no attempt made'
  while (Date.now() < end) {
    let answered = false
    const attempt = ok().then(
      (held) => ((answered = true), (last = 'it did not hold yet'), held),
      (err: Error) => ((answered = true), (last = `last attempt failed: ${err.message}`), false))
    if (await Promise.race([attempt, sleep(10_000).then(() => false)])) return true
    if (!answered) last = 'last attempt did not answer in 10 s'
    await sleep(250)
  }
  throw new Error(`timed out waiting until ${what} (${last})`)
}

let exitCode = 1
try {
  say(`seed ${seed}, ${installs} installs at concurrency ${concurrency}; work dir ${work}`)
  cluster.init()
  await cluster.start()
  const admin = connect(cluster.url, { max: 1 })
  await admin.unsafe('create database chaos')
  await admin.end()
  const dbUrl = cluster.url.replace(/\/postgres$/, '/chaos')
  const sql = connect(dbUrl, { max: 4 })
  await migrate(sql)

  fake = spawn(process.execPath, ['--import', 'tsx', '--import', './chaos/orphan-guard.mjs', 'chaos/fake-wix-process.ts'], {
    env: { ...process.env, PORT: String(wixPort), SEED: String(seed), APP_ID: 'chaos-app', APP_SECRET: appSecret, CHAOS_REAP: JSON.stringify(cluster.reap) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const fakeUrl = `http://127.0.0.1:${wixPort}`
  await until('the fake Wix answers', async () => (await healthy(fakeUrl)).status !== 0, 20_000)

  // The servers run compiled, as in production (plain `node`, no TypeScript loader): a restart
  // under the kill loop is then up in well under a second, not two or three of tsx's compiling,
  // which left both instances starting at once and the dead one's jobs waiting for either.
  const build = join(work, 'build')
  mkdirSync(build)
  await buildForTests(build)
  const logFile = join(work, 'servers.log')
  pool = serverPool({
    server: bundled(build, 'src/server.ts'),
    ports: [portA!, portB!],
    logFile,
    env: {
      DATABASE_URL: dbUrl, WIX_APP_ID: 'chaos-app', WIX_APP_SECRET: appSecret, WIX_WWW_URL: fakeUrl, WIX_API_URL: fakeUrl,
      ADMIN_TOKEN: adminToken, COOKIE_SECRET: cookieSecret, TOKEN_ENCRYPTION_KEY: `k1:${tokenKey}`, LOG_LEVEL: 'info',
      AUTO_FINISH: 'true', REDIRECT_WAIT_MS: '2000', SHUTDOWN_GRACE_MS: '500',
      // Hundreds of browsers, all on this one address.
      RATE_LIMIT_PER_MINUTE: '0',
    },
  })
  pool.startAll()
  for (const url of pool.urls) await until(`${url} is healthy`, async () => (await healthy(url)).status === 200, 30_000)
  say('two servers up; driving installs')

  const seen: Observations = { responses: [], networkErrors: 0, states: [], outcomes: {}, waited: [], detours: 0 }
  let next = 0
  let done = 0
  const drivers = Array.from({ length: concurrency }, async () => {
    while (next < installs) {
      const i = next++
      const outcome = await drive(i, pool!.urls, fakeUrl, seen, random)
      seen.outcomes[outcome] = (seen.outcomes[outcome] ?? 0) + 1
      done++
    }
  })

  // Chaos from the first second: a random server SIGKILLed every 0.5–2 s and restarted 0.5–2 s
  // later; Postgres restarted once, a third of the way through, while the browsers keep coming.
  const outage = { from: 0, to: 0 }
  const probes: { route: string; status: number; retryAfter: unknown; ms: number; failure?: string }[] = []
  let running = true
  let kills = 0
  const takeovers = takeoverClock(sql)
  let restarted = false
  const restartPostgres = async () => {
    restarted = true
    say(`restarting Postgres (${done}/${installs} flows done)`)
    // The outage tests instances that are up when the database goes: one the kill loop just
    // restarted waits for the database before it listens, and with both down no probe would
    // reach a listening one (seen on a slow host: every probe refused). Kills pause meanwhile.
    for (const url of pool!.urls) await until(`${url} is up before the outage`, async () => (await healthy(url)).status === 200, 30_000)
    outage.from = Date.now()
    await cluster.stop()
    // While it is gone: a probe's answer, and a route that needs the database, on both instances.
    for (let round = 0; round < 2; round++) {
      await sleep(700)
      await Promise.all(pool!.urls.flatMap((url) => [
        healthy(url).then((p) => probes.push({ route: '/healthz', ...p })),
        probe(`${url}/api/installations?limit=1`, { authorization: `Bearer ${adminToken}` }).then((p) => probes.push({ route: '/api/installations', ...p })),
      ]))
    }
    await sleep(1_000)
    await cluster.start()
    outage.to = Date.now()
    say(`Postgres is back after ${((outage.to - outage.from) / 1000).toFixed(1)} s`)
  }
  const chaos = (async () => {
    while (running) {
      await sleep(500 + random() * 1_500)
      if (!running) break
      if (!restarted && done >= installs / 3) {
        await restartPostgres()
        continue
      }
      const port = [portA!, portB!][Math.floor(random() * 2)]!
      if (await pool!.crash(port, 500 + random() * 1_500, takeovers.killed)) kills++
    }
  })()
  const progress = setInterval(() => say(`${done}/${installs} flows done, ${kills} kills, ${seen.networkErrors} network errors`), 5_000)
  await Promise.all(drivers)
  running = false
  await chaos
  if (!restarted) await restartPostgres() // a run too short to reach it mid-way still gets one
  clearInterval(progress)
  say(`all ${installs} flows driven in ${((Date.now() - began) / 1000).toFixed(0)} s; as the browsers saw them: ${JSON.stringify(seen.outcomes)}`)

  // Recovery is the service's own: nobody restarts anything for it now.
  for (const url of pool.urls) await until(`${url} is healthy again`, async () => (await healthy(url)).status === 200, 30_000)
  // This harness's own connections lived through the restart, and one may hang since (see
  // `until`): what follows reads through connections opened after it.
  const settled = connect(dbUrl, { max: 4 })
  // The chaos is over, Wix's misbehaving with it: what it left must now settle by itself. An
  // effect unlucky enough to draw failure after failure is by then a capped backoff (60 s) away
  // from its next try; left to misbehave, Wix could keep one failing past any wait chosen here.
  await request(`${fakeUrl}/_chaos/calm`, { method: 'POST' })
  // Settle: leases of killed processes run out, retries finish. Timers far ahead may stay.
  await until('every effect has run and no timer is due', async () => {
    const [row] = await settled<{ open: number }[]>`
      select count(*)::int as open from wix_engine.live_jobs
      where kind = 'effect' or (kind = 'timer' and status = 'pending' and run_at <= now())`
    return row!.open === 0
  }, 180_000)
  await sleep(1_000)
  const takeover = await takeovers.report()

  const wix = (await (await request(`${fakeUrl}/_chaos/report`)).body.json()) as ChaosReport
  const { checks, states, failures, lostWhileWaiting } = await runChecks(settled, {
    wix, secrets: [appSecret, adminToken, cookieSecret, tokenKey], seen, outage, logFile, unexpectedExits: pool.unexpected,
  })
  // A process still starting (it waits for the database before it listens) cannot answer; one
  // that listens must answer at once, not leave the caller hanging.
  const listening = probes.filter((p) => p.failure !== 'refused')
  const outageCheck: Check = {
    name: 'the service answers 503 with Retry-After while Postgres is gone',
    passed: listening.length > 0 && listening.every((p) => p.status === 503 && p.retryAfter !== undefined),
    detail: `probes during the outage: ${probes.map((p) => `${p.route} ${p.status || p.failure} in ${p.ms} ms${p.retryAfter ? ` (retry-after ${String(p.retryAfter)})` : ''}`).join(', ')}; both instances healthy again by themselves`,
  }
  checks.unshift(outageCheck)
  await settled.end({ timeout: 1 })
  void sql.end({ timeout: 0 }).catch(() => {}) // not awaited: ending a hung connection can hang too (porsager/postgres#1097)

  say(`installations by state: ${JSON.stringify(states)}`)
  say(`failures by reason: ${failures.map((f) => `${f.reason} ${f.n} (${f.injected} injected 400s, ${f.spent} codes spent by a process that died)`).join(', ') || 'none'}`)
  say(`installs lost while their browser waited: ${lostWhileWaiting}`)
  say(`Wix misbehaved ${Object.values(wix.injected).reduce((a, b) => a + b, 0)} times: ${JSON.stringify(wix.injected)}`)
  say(`${kills} SIGKILLs, 1 Postgres restart, ${seen.networkErrors} network errors seen by browsers`)
  say(`takeover of a killed instance's jobs: ${takeover.jobs} jobs, p50 ${takeover.p50Ms ?? '-'} ms, max ${takeover.maxMs ?? '-'} ms (p90 ${takeover.p90Ms ?? '-'} ms)`)
  for (const c of checks) say(`${c.passed ? 'PASS' : 'FAIL'} ${c.name}: ${c.detail}`)
  exitCode = checks.every((c) => c.passed) ? 0 : 1
  say(`${exitCode === 0 ? 'all checks passed' : 'some checks failed'} in ${((Date.now() - began) / 1000).toFixed(0)} s`)
} catch (err) {
  say(`aborted: ${(err as Error).stack ?? String(err)}`)
} finally {
  await pool?.stopAll(5_000)
  fake?.kill('SIGTERM')
  cleanUp()
}
// The servers' logs are kept when something failed, for whoever looks into it.
if (exitCode === 0) rmSync(work, { recursive: true, force: true })
else say(`logs kept in ${work}`)
process.exit(exitCode)
