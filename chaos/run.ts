// npm run test:chaos [-- --installs 300 --seed 7]: hundreds of concurrent installs on two server
// processes sharing one throwaway Postgres, while processes are SIGKILLed and restarted, Postgres
// restarts once, and the fake Wix misbehaves. Then the checks; exit 1 if any fails.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
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
import { prng } from './prng.ts'
import { serverPool } from './servers.ts'

const { values } = parseArgs({ options: { installs: { type: 'string', default: '300' }, seed: { type: 'string', default: '7' }, concurrency: { type: 'string', default: '40' } } })
const installs = Number(values.installs)
const seed = Number(values.seed)
const concurrency = Number(values.concurrency)
const random = prng(seed)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const say = (line: string) => console.log(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}`)

const work = mkdtempSync(join(tmpdir(), 'wie-chaos-'))
const [pgPort, wixPort, portA, portB] = [await freePort(), await freePort(), await freePort(), await freePort()]
const cluster = throwawayCluster(pgPort!)
const appSecret = randomBytes(16).toString('hex')
let fake: ReturnType<typeof spawn> | undefined
let pool: ReturnType<typeof serverPool> | undefined

async function healthy(url: string) {
  try {
    const res = await request(`${url}/healthz`)
    await res.body.dump()
    return { status: res.statusCode, retryAfter: res.headers['retry-after'] }
  } catch {
    return { status: 0, retryAfter: undefined }
  }
}

async function until(what: string, ok: () => Promise<boolean>, ms: number) {
  const end = Date.now() + ms
  while (Date.now() < end) if (await ok()) return true
  else await sleep(250)
  throw new Error(`timed out waiting until ${what}`)
}

let exitCode = 1
try {
  say(`seed ${seed}, ${installs} installs at concurrency ${concurrency}; work dir ${work}`)
  cluster.init()
  cluster.start()
  const admin = connect(cluster.url, { max: 1 })
  await admin.unsafe('create database chaos')
  await admin.end()
  const dbUrl = cluster.url.replace(/\/postgres$/, '/chaos')
  const sql = connect(dbUrl, { max: 4 })
  await migrate(sql)

  fake = spawn(process.execPath, ['--import', 'tsx', 'chaos/fake-wix-process.ts'], {
    env: { ...process.env, PORT: String(wixPort), SEED: String(seed), APP_ID: 'chaos-app', APP_SECRET: appSecret },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const fakeUrl = `http://127.0.0.1:${wixPort}`
  await until('the fake Wix answers', async () => (await healthy(fakeUrl)).status !== 0, 20_000)

  const logFile = join(work, 'servers.log')
  pool = serverPool({
    ports: [portA!, portB!],
    logFile,
    env: {
      DATABASE_URL: dbUrl, WIX_APP_ID: 'chaos-app', WIX_APP_SECRET: appSecret, WIX_WWW_URL: fakeUrl, WIX_API_URL: fakeUrl,
      ADMIN_TOKEN: randomBytes(18).toString('hex'), COOKIE_SECRET: randomBytes(32).toString('hex'),
      TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64'), LOG_LEVEL: 'info', AUTO_FINISH: 'true',
      REDIRECT_WAIT_MS: '2000', SHUTDOWN_GRACE_MS: '500', JOB_LEASE_MS: '15000',
    },
  })
  pool.startAll()
  for (const url of pool.urls) await until(`${url} is healthy`, async () => (await healthy(url)).status === 200, 30_000)
  say('two servers up; driving installs')

  const seen: Observations = { responses: [], networkErrors: 0, states: [], outcomes: {} }
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

  // Chaos: kill a random server every few seconds; restart Postgres once, mid-run.
  const outage = { from: 0, to: 0 }
  const probes: { status: number; retryAfter: unknown }[] = []
  let running = true
  let kills = 0
  let restarted = false
  const restartPostgres = async () => {
    restarted = true
    say('restarting Postgres')
    outage.from = Date.now()
    cluster.stop()
    await sleep(500)
    for (const url of pool!.urls) probes.push(await healthy(url))
    await sleep(2_000)
    cluster.start()
    outage.to = Date.now()
    say('Postgres is back')
  }
  const chaos = (async () => {
    while (running) {
      await sleep(500 + random() * 1_500)
      if (!running) break
      if (!restarted && done >= installs * 0.4) {
        await restartPostgres()
        continue
      }
      const port = [portA!, portB!][Math.floor(random() * 2)]!
      kills++
      await pool!.crash(port, 500 + random() * 1_500)
    }
  })()
  const progress = setInterval(() => say(`${done}/${installs} flows done, ${kills} kills, ${seen.networkErrors} network errors`), 5_000)
  await Promise.all(drivers)
  running = false
  await chaos
  if (!restarted) await restartPostgres() // a run too short to reach it mid-way still gets one
  clearInterval(progress)
  say(`all ${installs} flows driven: ${JSON.stringify(seen.outcomes)}`)

  for (const url of pool.urls) await until(`${url} is healthy again`, async () => (await healthy(url)).status === 200, 30_000)
  // Settle: leases of killed processes run out, retries finish. Timers far ahead may stay.
  await until('every effect has run and no timer is due', async () => {
    const [row] = await sql<{ open: number }[]>`
      select count(*)::int as open from jobs
      where (kind = 'effect' and status in ('pending', 'running')) or (kind = 'timer' and status = 'pending' and run_at <= now())`
    return row!.open === 0
  }, 240_000)
  await sleep(2_000)

  const report = (await (await request(`${fakeUrl}/_chaos/report`)).body.json()) as { exchanges: Record<string, number[]>; secrets: string[] }
  const { checks, states, failures } = await runChecks(sql, { ...report, secrets: [...report.secrets, appSecret], seen, outage, logFile })
  const outageCheck: Check = {
    name: 'the service answers 503 with Retry-After while Postgres is gone',
    // A process still starting (it waits for the database before it listens) cannot answer: 0.
    passed: probes.some((p) => p.status !== 0) && probes.filter((p) => p.status !== 0).every((p) => p.status === 503 && p.retryAfter !== undefined),
    detail: `probes during the outage: ${probes.map((p) => `${p.status}${p.retryAfter ? ' retry-after ' + String(p.retryAfter) : ''}`).join(', ')}; both instances healthy again by themselves`,
  }
  checks.unshift(outageCheck)
  await sql.end()

  say(`installations by state: ${JSON.stringify(states)}`)
  say(`failures by reason: ${failures.map((f) => `${f.reason} ${f.n} (${f.injected} injected 400s, ${f.spent} codes Wix had already spent: an instance died between Wix's answer and storing the tokens)`).join(', ') || 'none'}`)
  say(`${kills} SIGKILLs, 1 Postgres restart, ${seen.networkErrors} network errors seen by browsers`)
  for (const c of checks) say(`${c.passed ? 'PASS' : 'FAIL'} ${c.name}: ${c.detail}`)
  exitCode = checks.every((c) => c.passed) ? 0 : 1
  say(exitCode === 0 ? 'all checks passed' : 'some checks failed')
} catch (err) {
  say(`aborted: ${(err as Error).message}`)
} finally {
  await pool?.stopAll()
  fake?.kill('SIGTERM')
  cluster.destroy()
}
process.exit(exitCode)
