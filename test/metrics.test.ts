import t from 'tap'
import { freshDatabase } from './support/database.ts'
import { testClock } from './support/engine.ts'
import { latestInstallationId, siteOwner } from './support/flow.ts'
import { startService, type Service } from './support/service.ts'

/** GET /metrics: Prometheus text that parses, counters that move with the flow, no secrets. */

const db = await freshDatabase()
t.teardown(db.drop)
// The outbox gauges are absolute: that subtest gets a database nobody else writes to.
const quietDb = await freshDatabase()
t.teardown(quietDb.drop)

interface Sample { name: string; labels: Record<string, string>; value: number }

/** A strict reader of the text exposition format 0.0.4; every problem is returned, not thrown. */
function parseExposition(text: string) {
  const help = new Map<string, string>()
  const type = new Map<string, string>()
  const samples: Sample[] = []
  const problems: string[] = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line)
    if (meta) {
      if (meta[1] === 'HELP') help.set(meta[2]!, meta[3]!)
      else if (/^(counter|gauge|histogram|summary|untyped)$/.test(meta[3]!)) type.set(meta[2]!, meta[3]!)
      else problems.push(`bad TYPE: ${line}`)
      continue
    }
    if (line.startsWith('#')) continue
    // prom-client writes NaN as `Nan`; Prometheus reads floats with Go's ParseFloat, case-insensitively.
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([Nn]a[Nn]|[+-]Inf|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)(?: -?\d+)?$/.exec(line)
    if (!m) {
      problems.push(`bad sample: ${line}`)
      continue
    }
    const labels: Record<string, string> = {}
    const body = m[2] ?? ''
    const pair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)/y
    while (pair.lastIndex < body.length) {
      const p = pair.exec(body)
      if (!p) {
        problems.push(`bad labels: ${line}`)
        break
      }
      labels[p[1]!] = p[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1')
    }
    samples.push({ name: m[1]!, labels, value: /^nan$/i.test(m[3]!) ? NaN : Number(m[3]!.replace('Inf', 'Infinity')) })
  }
  const family = (name: string) =>
    type.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '')
  for (const s of samples) {
    const f = family(s.name)
    if (!help.has(f)) problems.push(`no HELP for ${s.name}`)
    if (!type.has(f)) problems.push(`no TYPE for ${s.name}`)
  }
  return { samples, problems, help, type }
}

async function scrape(service: Service) {
  // Effects report their outcome just after their transition commits: let them finish.
  await service.app.engine.runner.idle()
  const res = await service.api('GET', '/metrics', { token: null })
  const parsed = parseExposition(res.text)
  /** The sample's value, 0 when the series does not exist (yet). */
  const value = (name: string, labels: Record<string, string> = {}) =>
    parsed.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0
  return { ...res, ...parsed, value }
}

t.test('one complete install and finish move every counter by what happened', async (t) => {
  // Two scrapes a second apart: each must count afresh (the cache has its own test file).
  const service = await startService(t, { db, env: { METRICS_MAX_AGE_SECONDS: '0' } })
  const before = await scrape(service)
  t.equal(before.status, 200, '/metrics answers 200 without any token')
  t.match(String(before.headers['content-type']), /^text\/plain; version=0\.0\.4/, 'in the Prometheus text format')
  t.same(before.problems, [], 'every line parses and every metric has # HELP and # TYPE')
  t.ok(before.type.get('process_cpu_user_seconds_total') ?? before.type.get('process_cpu_seconds_total'), 'with the default process metrics')
  t.equal(before.type.get('wix_install_effect_duration_seconds'), 'histogram', 'effect latencies are a histogram')

  const owner = siteOwner(service)
  await owner.openAppUrl('metrics-install-1')
  const id = await latestInstallationId(service)
  const back = await owner.approve()
  t.equal((await owner.callback(back)).status, 302, 'the install completes')
  const finish = await service.api('POST', `/api/installations/${id}/finish`)
  t.equal(finish.json.state, 'Finished', 'and finishes')

  const after = await scrape(service)
  t.same(after.problems, [], 'the text still parses after traffic')
  const delta = (name: string, labels: Record<string, string>) => after.value(name, labels) - before.value(name, labels)
  t.equal(delta('wix_install_transitions_total', { machine: 'installation', from: 'Authorizing', to: 'CodeReceived' }), 1, 'one Authorizing → CodeReceived transition')
  t.equal(delta('wix_install_transitions_total', { machine: 'installation', from: 'SetupIncomplete.finishing', to: 'Finished' }), 1, 'one → Finished transition')
  t.equal(delta('wix_install_transitions_total', { machine: 'installation', from: '', to: 'AppUrlHit.redirecting' }), 1, 'one workflow started')
  t.equal(delta('wix_install_effect_runs_total', { effect: 'exchangeCode', outcome: 'ok' }), 1, 'one successful code exchange')
  t.equal(delta('wix_install_effect_runs_total', { effect: 'finishSetup', outcome: 'ok' }), 1, 'one successful finish')
  t.equal(delta('wix_install_effect_duration_seconds_count', { effect: 'exchangeCode', outcome: 'ok' }), 1, 'its latency observed once')
  t.equal(delta('wix_install_wix_calls_total', { endpoint: 'oauth/access', status: '200' }), 2, 'two 200s from oauth/access: the exchange and the refresh')
  t.equal(delta('wix_install_wix_calls_total', { endpoint: 'bi-event', status: '200' }), 1, 'one 200 from the bi-event')
  t.equal(delta('wix_install_wix_call_duration_seconds_count', { endpoint: 'oauth/access' }), 2, 'both oauth/access latencies observed')
  t.equal(after.value('wix_install_installations', { machine: 'installation', state: 'Finished' }), 1, 'one installation is Finished')
  t.equal(after.value('wix_install_jobs_waiting', { kind: 'effect' }), 0, 'no effect is left waiting')
  t.equal(after.value('wix_install_timer_lag_seconds'), 0, 'and no timer is late')
  t.equal(after.value('wix_install_write_queue_depth'), 0, 'no engine write is queued')
  t.equal(after.value('wix_install_write_in_flight_age_seconds'), 0, 'and none is in flight')
  t.equal(delta('wix_install_http_requests_total', { method: 'GET', route: '/wix/redirect', status: '302' }), 1, 'the callback counted under its route')
  t.equal(delta('wix_install_http_requests_total', { method: 'POST', route: '/api/installations/:id/finish', status: '200' }), 1, 'the finish counted under its route pattern')
  t.notOk(after.samples.some((s) => /[?]|code=|state=/.test(s.labels.route ?? '')), 'no route label carries a query string')
  t.notOk(after.text.includes(id), 'nor an installation id')

  const [exchange, refresh, bi] = service.wix.requests
  const secrets = [
    service.wix.appSecret,
    back.searchParams.get('code')!,
    owner.state,
    (refresh!.body as { refresh_token: string }).refresh_token,
    String(bi!.headers.authorization),
  ]
  t.equal(exchange!.endpoint, 'oauth/access', 'the secrets checked are the ones Wix saw')
  for (const secret of secrets) t.notOk(after.text.includes(secret), 'no secret appears in /metrics')
})

t.test('a 503 on the exchange is a retried effect and a 503 Wix call', async (t) => {
  const service = await startService(t, { db })
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', status: 503 })
  const owner = siteOwner(service)
  await owner.openAppUrl('metrics-install-2')
  const id = await latestInstallationId(service)
  await owner.callback(await owner.approve())
  const done = await service.app.engine.waitFor(id, (w) => w.state === 'SetupIncomplete', 8_000)
  t.equal(done?.state, 'SetupIncomplete', 'the retry completes the install')
  const m = await scrape(service)
  t.equal(m.value('wix_install_effect_runs_total', { effect: 'exchangeCode', outcome: 'retry' }), 1, 'the failed attempt counts as a retry')
  t.equal(m.value('wix_install_effect_runs_total', { effect: 'exchangeCode', outcome: 'ok' }), 1, 'the second as ok')
  t.equal(m.value('wix_install_wix_calls_total', { endpoint: 'oauth/access', status: '503' }), 1, 'Wix’s 503 is counted by status')
  t.equal(m.value('wix_install_wix_calls_total', { endpoint: 'oauth/access', status: '200' }), 1, 'and the 200 that followed')
})

t.test('the outbox gauges show a due job nobody ran and a late timer', async (t) => {
  const clock = testClock(new Date())
  // No poll loop: nothing claims the retry, however far the clock moves.
  const service = await startService(t, { db: quietDb, now: clock.now, engine: { poll: false }, env: { REDIRECT_WAIT_MS: '200' } })
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', status: 429, retryAfterSeconds: 120 })
  const owner = siteOwner(service)
  await owner.openAppUrl('metrics-install-3')
  t.equal((await owner.callback(await owner.approve())).status, 202, 'the browser waits while Wix rate-limits us')

  let m = await scrape(service)
  t.equal(m.value('wix_install_effect_runs_total', { effect: 'exchangeCode', outcome: 'retry' }), 1, 'the exchange is to be retried')
  t.equal(m.value('wix_install_wix_calls_total', { endpoint: 'oauth/access', status: '429' }), 1, 'after a 429')
  t.equal(m.value('wix_install_installations', { machine: 'installation', state: 'CodeReceived' }), 1, 'the installation is CodeReceived')
  t.equal(m.value('wix_install_jobs_waiting', { kind: 'effect' }), 1, 'one effect waits in the outbox')
  t.equal(m.value('wix_install_jobs_waiting', { kind: 'timer' }), 1, 'beside the code-deadline timer')
  t.equal(m.value('wix_install_oldest_waiting_job_seconds'), 0, 'neither is due yet')

  clock.advance(150_000)
  m = await scrape(service)
  t.equal(m.value('wix_install_oldest_waiting_job_seconds'), 30, 'the retry has waited 30 s past its Retry-After')
  t.equal(m.value('wix_install_timer_lag_seconds'), 0, 'the deadline is not due')

  clock.advance(510_000)
  m = await scrape(service)
  t.equal(m.value('wix_install_timer_lag_seconds'), 60, 'the 10-minute deadline is a minute late')
  t.equal(m.value('wix_install_oldest_waiting_job_seconds'), 540, 'the oldest due job is the retry')
  t.same(m.problems, [], 'and the text parses')
})
