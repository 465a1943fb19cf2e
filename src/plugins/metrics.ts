import fp from 'fastify-plugin'
import { z } from 'zod'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { safeEqual } from '../crypto/oauth-state.ts'
import { countWorkflows, type JobOutcome, queueStats, type TransitionStep, type Workflow } from '../engine/index.ts'
import { Errors } from '../errors.ts'
import type { WixCallInfo } from '../wix/client.ts'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

export interface Metrics {
  /** This app's own registry: two apps in one process never share series. */
  registry: Registry
  wixCall(info: WixCallInfo): void
}

const DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const seconds = (ms: number) => Math.max(0, ms) / 1000

/**
 * A gauge recomputed from the database at each refresh. Series seen before and absent now are
 * set to 0 rather than dropped, so a state that empties reads 0 on dashboards, not "no data".
 */
function snapshotGauge<L extends string>(g: Gauge<L>) {
  const seen = new Map<string, Partial<Record<L, string>>>()
  return (rows: { labels: Partial<Record<L, string>>; value: number }[]) => {
    for (const labels of seen.values()) g.set(labels, 0)
    for (const { labels, value } of rows) {
      seen.set(JSON.stringify(labels), labels)
      g.set(labels, value)
    }
  }
}

/**
 * Prometheus metrics at `GET /metrics`. Open, like /healthz and unlike /api/*: scrapers rarely
 * send bearer tokens, and nothing here is secret. Labels are state names, failure reasons, effect
 * and endpoint names, status codes and route patterns (never raw URLs, which can carry a code).
 */
export default fp(
  async (app) => {
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })
    const registers = [registry]

    const installations = new Gauge({ name: 'wix_install_installations', help: 'Workflows by machine and top-level state', labelNames: ['machine', 'state'] as const, registers })
    const failures = new Gauge({ name: 'wix_install_failures', help: 'Failed workflows by machine and failure reason', labelNames: ['machine', 'reason'] as const, registers })
    const transitions = new Counter({ name: 'wix_install_transitions_total', help: 'Accepted transitions committed by this process (from is empty for the start)', labelNames: ['machine', 'from', 'to'] as const, registers })
    const effectRuns = new Counter({ name: 'wix_install_effect_runs_total', help: 'Effect runs by this process, by effect and outcome', labelNames: ['effect', 'outcome'] as const, registers })
    const effectDuration = new Histogram({ name: 'wix_install_effect_duration_seconds', help: 'Effect run duration', labelNames: ['effect', 'outcome'] as const, buckets: DURATION_BUCKETS, registers })
    const timerFires = new Counter({ name: 'wix_install_timer_fires_total', help: 'Timers fired by this process, by timer and outcome', labelNames: ['timer', 'outcome'] as const, registers })
    const wixCalls = new Counter({ name: 'wix_install_wix_calls_total', help: 'Calls to Wix by endpoint and HTTP status (no_response: network error or timeout)', labelNames: ['endpoint', 'status'] as const, registers })
    const wixDuration = new Histogram({ name: 'wix_install_wix_call_duration_seconds', help: 'Wix call duration', labelNames: ['endpoint'] as const, buckets: DURATION_BUCKETS, registers })
    const jobsWaiting = new Gauge({ name: 'wix_install_jobs_waiting', help: 'Outbox depth: pending and running jobs by kind', labelNames: ['kind'] as const, registers })
    const oldestWaiting = new Gauge({ name: 'wix_install_oldest_waiting_job_seconds', help: 'How long the longest-waiting due job has been claimable (0 if none)', registers })
    const deadJobs = new Gauge({ name: 'wix_install_dead_jobs', help: 'Jobs that can never run, by kind and reason (see GET /api/jobs/dead)', labelNames: ['kind', 'reason'] as const, registers })
    const timerLag = new Gauge({ name: 'wix_install_timer_lag_seconds', help: 'How long the most overdue timer has been due without firing (0 if none)', registers })
    // Read from the engine's writer at each scrape: a write queue that grows, or a write in flight
    // for seconds, is the database not keeping up (a held lock, a hung connection) before any 5xx.
    const writer = () => app.engine.writerStats()
    new Gauge({ name: 'wix_install_write_queue_depth', help: 'Engine writes queued in this process behind the batches in flight', registers,
      collect() { this.set(writer().queued) } })
    new Gauge({ name: 'wix_install_write_in_flight_age_seconds', help: 'How long the oldest engine write in flight has waited since it was queued (0 if none)', registers,
      collect() { this.set(writer().oldestInFlightMs / 1000) } })
    const clientRejections = new Counter({ name: 'wix_install_wix_client_rejections_total', help: 'Token calls Wix refused for the app\'s own client id/secret (a configuration fault, never an installation\'s)', registers })
    const httpRequests = new Counter({ name: 'wix_install_http_requests_total', help: 'HTTP requests by method, route pattern and status', labelNames: ['method', 'route', 'status'] as const, registers })

    const setInstallations = snapshotGauge(installations)
    const setFailures = snapshotGauge(failures)
    const setDeadJobs = snapshotGauge(deadJobs)
    for (const kind of ['effect', 'timer']) jobsWaiting.set({ kind }, 0)

    // Counters must never break the work they observe.
    const safely = <A extends unknown[]>(fn: (...a: A) => void) => (...a: A) => {
      try {
        fn(...a)
      } catch (err) {
        app.log.warn({ err: { message: (err as Error).message } }, 'metrics: recording failed')
      }
    }

    app.engine.onTransition(safely((w: Workflow, steps: TransitionStep[]) => {
      for (const s of steps) transitions.inc({ machine: w.machine, from: s.from ?? '', to: s.to })
    }))
    app.engine.runner.onOutcome(safely((o: JobOutcome) => {
      if (o.kind === 'timer') return timerFires.inc({ timer: o.name, outcome: o.outcome })
      effectRuns.inc({ effect: o.name, outcome: o.outcome })
      effectDuration.observe({ effect: o.name, outcome: o.outcome }, seconds(o.durationMs))
    }))
    app.addHook('onResponse', async (request, reply) => {
      httpRequests.inc({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) })
    })

    /** The database-derived gauges, in two cheap statements of the engine's read API; "now" is the app clock. */
    async function refresh() {
      const now = app.now()
      const [counts, jobs] = await Promise.all([countWorkflows(app.sql), queueStats(app.sql, now)])
      const byState = new Map<string, { labels: { machine: string; state: string }; value: number }>()
      const byReason = new Map<string, { labels: { machine: string; reason: string }; value: number }>()
      for (const r of counts) {
        const s = byState.get(`${r.machine}\0${r.state}`) ?? { labels: { machine: r.machine, state: r.state }, value: 0 }
        s.value += r.n
        byState.set(`${r.machine}\0${r.state}`, s)
        if (r.reason === null) continue
        const f = byReason.get(`${r.machine}\0${r.reason}`) ?? { labels: { machine: r.machine, reason: r.reason }, value: 0 }
        f.value += r.n
        byReason.set(`${r.machine}\0${r.reason}`, f)
      }
      setInstallations([...byState.values()])
      setFailures([...byReason.values()])
      jobsWaiting.set({ kind: 'effect' }, jobs.effect)
      jobsWaiting.set({ kind: 'timer' }, jobs.timer)
      const age = (since: Date | null) => (since ? seconds(now.getTime() - since.getTime()) : 0)
      oldestWaiting.set(age(jobs.oldest))
      timerLag.set(age(jobs.oldest_timer))
      setDeadJobs((await app.engine.deadJobCounts()).map((d) => ({ labels: { kind: d.kind, reason: d.code }, value: d.n })))
    }

    /**
     * The database gauges as of at most METRICS_MAX_AGE_SECONDS ago (app clock). Concurrent
     * scrapes share one refresh, so however often /metrics is hit, the counting statements run
     * at most once per that age. A failed refresh is not kept: the next scrape tries again.
     */
    let refreshed: { at: number; done: Promise<void> } | undefined
    let inFlight: Promise<void> | undefined
    function current(): Promise<void> {
      if (inFlight) return inFlight
      const at = app.now().getTime()
      if (refreshed && at - refreshed.at < app.config.metricsMaxAgeMs) return refreshed.done
      const done = refresh().finally(() => (inFlight = undefined))
      inFlight = done
      refreshed = { at, done }
      done.catch(() => {
        if (refreshed?.done === done) refreshed = undefined
      })
      return done
    }

    app.decorate('metrics', {
      registry,
      wixCall: safely((info: WixCallInfo) => {
        wixCalls.inc({ endpoint: info.endpoint, status: info.status === null ? 'no_response' : String(info.status) })
        if (info.code === 'WIX_CLIENT_REJECTED') clientRejections.inc()
        wixDuration.observe({ endpoint: info.endpoint }, seconds(info.durationMs))
      }),
    } satisfies Metrics)

    // Scraped every few seconds: only failures are worth a log line.
    const text = z.string().describe('Prometheus text exposition format')
    const refused = z.object({ statusCode: z.number(), code: z.string(), error: z.string(), message: z.string() })
    const token = app.config.metricsToken
    app.get('/metrics', {
      logLevel: 'warn',
      schema: {
        summary: 'Prometheus metrics (open like /healthz unless METRICS_TOKEN is set: it holds no secret)',
        response: { 200: text, 401: refused, 503: text },
      },
      // Checked before any work, in constant time like the admin token.
      onRequest: async (request) => {
        if (token === undefined) return
        const header = request.headers.authorization ?? ''
        if (!header.startsWith('Bearer ') || !safeEqual(header.slice(7), token)) throw new Errors.METRICS_UNAUTHORIZED()
      },
    }, async (request, reply) => {
      try {
        await current()
      } catch (err) {
        // Stale or zeroed database gauges would mislead; a failed scrape shows as `up == 0`.
        request.log.warn({ err: { message: (err as Error).message } }, 'metrics: database unreachable')
        return reply.code(503).header('retry-after', '5').type('text/plain').send('database unreachable\n')
      }
      return reply.header('content-type', registry.contentType).header('cache-control', 'no-store').send(await registry.metrics())
    })
    app.addHook('onClose', async () => registry.clear())
  },
  { name: 'metrics', dependencies: ['config', 'database', 'engine'] },
)
