import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import { createRetryBudget, RetryBudgetExhausted } from '../src/wix/retry-budget.ts'
import { freshDatabase, needsRealPostgres } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { startService, type Service } from './support/service.ts'

/** The open routes cannot be used to make this service call Wix more than a real install would. */

const db = await freshDatabase()
t.teardown(db.drop)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const exchanges = (service: Service) => service.wix.requests.filter((r) => r.endpoint === 'oauth/access').length

t.test('callbacks with unknown, spent or forged states never reach Wix', async (t) => {
  const service = await startService(t, { db })
  const owner = siteOwner(service)
  await owner.startFromPlatform()
  const back = await owner.approve()
  t.equal((await owner.callback(back)).status, 302, 'one real install completes')
  t.equal(exchanges(service), 1, 'with its one code exchange')

  const forged = () => `${randomUUID()}.${randomBytes(32).toString('base64url')}`
  const attacker = siteOwner(service)
  await attacker.startFromPlatform() // a state cookie of its own, for an installation of its own
  const statuses: number[] = []
  for (let i = 0; i < 20; i++) {
    const url = new URL(back)
    url.searchParams.set('code', `garbage-${i}`)
    url.searchParams.set('state', forged())
    statuses.push((await attacker.callback(url)).status) // forged state, attacker's cookie
    statuses.push((await siteOwner(service).callback(url)).status) // forged state, no cookie
    statuses.push((await attacker.callback(back)).status) // the real, spent state in another browser
    statuses.push((await owner.callback(back)).status) // the real state again, from its own browser (cookie spent)
  }
  t.ok(statuses.every((s) => s >= 400 && s < 500), `all ${statuses.length} are refused with a 4xx`)
  // Each begun install has its own state cookie: a state this browser did not begin finds none.
  t.same([...new Set(statuses)].sort(), [400], 'as a missing state cookie: no browser here began those installs')
  t.equal(exchanges(service), 1, 'and not one of them reached Wix')
})

t.test('20 garbage codes while Wix is down: retries capped per instance', async (t) => {
  /** Starts 20 installs whose callbacks carry codes Wix never issued, with Wix answering 503. */
  async function flood(service: Service) {
    service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', status: 503, times: 10_000 })
    for (let i = 0; i < 20; i++) {
      const owner = siteOwner(service)
      await owner.startFromPlatform()
      const url = new URL(`${service.url}/wix/redirect`)
      url.searchParams.set('code', `garbage-${i}`)
      url.searchParams.set('state', owner.state)
      url.searchParams.set('instanceId', randomUUID())
      const page = await owner.callback(url)
      if (page.status !== 202) t.fail(`callback ${i} answered ${page.status}, not the waiting page`)
    }
    const started = Date.now()
    await sleep(4_000)
    return { calls: exchanges(service), seconds: (Date.now() - started) / 1000 }
  }

  const capped = await startService(t, { db, env: { REDIRECT_WAIT_MS: '0', WIX_RETRIES_PER_MINUTE: '6' } })
  const withBudget = await flood(capped)
  // 20 first calls, a burst of 1, then 6 a minute: whatever the runner's backoff would allow.
  const bound = 20 + 1 + Math.ceil((withBudget.seconds + 2) * 0.1)
  t.ok(withBudget.calls >= 20, `every garbage code was tried once (${withBudget.calls} calls)`)
  const took = withBudget.seconds.toFixed(0)
  t.ok(withBudget.calls <= bound, `${withBudget.calls} calls to Wix in ~${took} s, within the budget's ${bound}`)
  const [denied] = await capped.app.sql<{ n: number }[]>`
    select count(*)::int as n from wix_engine.job_attempts where error ->> 'code' = 'WIX_RETRY_BUDGET'`
  t.ok(denied!.n > 0, `${denied!.n} retries waited for the budget instead of calling Wix, each recorded as an attempt`)
  await capped.app.close()

  const uncapped = await startService(t, { db, env: { REDIRECT_WAIT_MS: '0', WIX_RETRIES_PER_MINUTE: '0' } })
  const without = await flood(uncapped)
  t.ok(without.calls > 2 * bound, `without the cap the same load makes ${without.calls} calls in the same time`)
})

t.test('the bucket: a burst, then its rate', async (t) => {
  let now = 0
  const budget = createRetryBudget({ perMinute: 60, now: () => now })
  for (let i = 0; i < 10; i++) budget.take()
  t.throws(() => budget.take(), RetryBudgetExhausted, 'ten seconds\' worth at once, then none')
  try {
    budget.take()
  } catch (err) {
    t.equal((err as RetryBudgetExhausted).retryAfterMs, 1000, 'saying the next is free in a second')
    const stored = { code: 'WIX_RETRY_BUDGET', retryable: true, retryAfterMs: 1000 }
    t.match((err as RetryBudgetExhausted).toJSON(), stored, 'stored as a retryable error')
  }
  now += 1000
  t.doesNotThrow(() => budget.take(), 'a second later, one more')
  const free = createRetryBudget({ perMinute: 0 })
  t.doesNotThrow(() => { for (let i = 0; i < 10_000; i++) free.take() }, '0 means no cap')
})

t.test('waiting pages whose browsers disconnected stop costing the database', { skip: needsRealPostgres('counts transactions in pg_stat_database') }, async (t) => {
  const service = await startService(t, { db, env: { REDIRECT_WAIT_MS: '10000' } })
  // An install whose exchange Wix holds: its waiting page would wait the whole 5 s per request.
  const owner = siteOwner(service)
  await owner.startFromPlatform()
  const id = await owner.installationId()
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', hang: true })
  const first = owner.callback(await owner.approve()).catch(() => undefined)
  await service.app.engine.waitFor(id, (w) => w.state === 'CodeReceived', 5_000)
  const flow = `wix_install_flow_${id}=${service.app.signCookie(id)}`

  const commits = async () => {
    await sleep(1_500) // backends report their counts within a second of going idle
    const [row] = await service.app.sql<{ n: string }[]>`select xact_commit as n from pg_stat_database where datname = current_database()`
    return Number(row!.n)
  }
  const window = async (load: () => Promise<unknown>) => {
    const before = await commits()
    await Promise.all([load(), sleep(3_000)])
    return (await commits()) - before
  }
  const idle = await window(async () => {})
  const left = await window(() => Promise.all(Array.from({ length: 200 }, async () => {
    const res = await fetch(`${service.url}/wix/redirect/continue?installation=${id}`, {
      headers: { cookie: flow, accept: 'text/html' }, signal: AbortSignal.timeout(50),
    }).catch(() => undefined)
    await res?.body?.cancel()
  })))
  // Each request costs its own few reads; waiting on would add a poll every 250 ms for 5 s each
  // (some 2,400 more in this window, measured with the wait left running).
  t.ok(left - idle < 600, `200 disconnected waiting pages cost ${left - idle} transactions beyond the ${idle} of an idle service, not thousands`)
  service.wix.releaseAll()
  await first
})
