import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import postgres, { type Sql } from 'postgres'
import { runFlows, HOPS, type FlowTarget } from './flows.ts'
import { cpuDelta, cpuMs, memory, median, postgresProcesses, round, sleep, startProcess, summary, freePort, type Child } from './lib.ts'
import { diffCounts, startPgProxy } from './pg-proxy.ts'
import { fold, type CpuProfile, type Window } from './profile.ts'
import { createWalMeter } from './wal.ts'

export interface FlowsOptions {
  serverUrl: string
  flows: number
  concurrency: number
  rounds: number
  warmup: number
  countFlows: number
  keep: boolean
  /** Both servers log at this level, to stdout, which goes nowhere (the cost of writing is counted). */
  logLevel: string
  /** A directory: both timed servers run under `--cpu-prof` and their profiles are folded per flow. */
  profileDir?: string
  /** Each side's entry point: compiled (`compile.ts`) or, by default here, the TypeScript sources under tsx. */
  entries?: Record<Side, string>
  /** The reference side runs the engine at this git revision instead (`entries.reference` is its build). */
  against?: string
}

type Side = 'engine' | 'reference'
const SIDES: Side[] = ['engine', 'reference']
const WAL_READER = 'wie-bench-wal'
/** How long memory is watched once the load stops. */
const SETTLE_SECONDS = 60

const withDatabase = (url: string, name: string) => {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}
/** Now, in the clock of a V8 CPU profile (CLOCK_MONOTONIC, µs): the same on every process here. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n)

const viaPort = (url: string, port: number) => {
  const u = new URL(url)
  u.hostname = '127.0.0.1'
  u.port = String(port)
  return u.toString()
}

/** What each statement is for, so the per-flow table reads as a list of reasons. */
function label(q: string): string {
  const rules: [RegExp, string][] = [
    [/^select w\.(\*|id, .*), null::boolean as job_held from wix_engine.workflows/, 'engine: read (send, before deciding)'],
    [/^select w\.(\*|id, .*), (w\.effects @>|exists \(select 1 from wix_engine.jobs)/, 'engine: read with job lease (effect result)'],
    [/^with c as \( select \* from jsonb_to_recordset/, 'engine: batched write (creates and sends)'],
    [/^with timers as \( select id from wix_engine.jobs/, 'engine: job poll (claim)'],
    [/^with timers as \( update wix_engine.jobs j set lease_until/, 'engine: heartbeat (lease renewal)'],
    [/^with due as \( select id, timers from wix_engine.workflows/, 'engine: timer poll (due timers into jobs)'],
    [/^select (\*|w\.id, .*) from wix_engine.workflows (w )?where machine = \$1 and \(id = /, 'finish: find installation by id or instanceId'],
    [/^insert into wix_install.exchanged_tokens/, 'effect: keep exchanged tokens (outbox)'],
    [/^with saved as \( insert into wix_install.instance_tokens/, 'effect: store tokens'],
    [/^select refresh_token, workflow_id from wix_install.instance_tokens/, 'effect: read refresh token'],
    [/^update wix_install.instance_tokens/, 'effect: store refreshed token'],
    [/^select access_token/, 'vault: cached access token'],
    [/wix_install.webhook_deliveries/, 'webhooks: redelivery poll'],
    [/ref_installations/, 'reference'],
  ]
  return rules.find(([re]) => re.test(q))?.[1] ?? 'other'
}

export async function runFlowsMode(o: FlowsOptions, fakeUrl: string, fakeCreds: { appId: string; appSecret: string }, log: (s: string) => void) {
  /** How progress lines name a side: under --against, the reference side is the engine at that revision. */
  const named = (side: Side) => (side === 'reference' && o.against ? `engine at ${o.against}` : side)
  const admin = postgres(withDatabase(o.serverUrl, 'postgres'), { max: 1, onnotice: () => {} })
  const tag = randomBytes(4).toString('hex')
  const dbs: Record<Side, string> = { engine: `wie_bench_engine_${tag}`, reference: `wie_bench_ref_${tag}` }
  for (const side of SIDES) await admin.unsafe(`create database ${dbs[side]}`)
  const sideSql: Record<Side, Sql> = {
    engine: postgres(withDatabase(o.serverUrl, dbs.engine), { max: 1, onnotice: () => {} }),
    reference: postgres(withDatabase(o.serverUrl, dbs.reference), { max: 1, onnotice: () => {} }),
  }
  const adminToken = randomBytes(24).toString('hex')
  const secrets = {
    ADMIN_TOKEN: adminToken,
    COOKIE_SECRET: randomBytes(32).toString('hex'),
    TOKEN_ENCRYPTION_KEY: `k1:${randomBytes(32).toString('base64')}`,
    WIX_APP_ID: fakeCreds.appId,
    WIX_APP_SECRET: fakeCreds.appSecret,
    WIX_WWW_URL: fakeUrl,
    WIX_API_URL: fakeUrl,
    LOG_LEVEL: o.logLevel,
    AUTO_FINISH: 'false',
    // Every flow comes from this one address.
    RATE_LIMIT_PER_MINUTE: '0',
  }
  const engineArgs = (process.env.BENCH_ENGINE_NODE_ARGS ?? '').split(' ').filter(Boolean)
  const start = async (side: Side, databaseUrl: string, nodeArgs: string[] = []) => {
    const port = await freePort()
    const env = { ...secrets, DATABASE_URL: databaseUrl, PUBLIC_URL: `http://127.0.0.1:${port}` }
    return side === 'engine'
      ? startProcess(o.entries?.engine ?? 'src/server.ts', env, port, '/healthz', [...engineArgs, ...nodeArgs])
      : startProcess(o.entries?.reference ?? 'bench/reference/server.ts', env, port, '/healthz', nodeArgs)
  }
  const target = (c: Child): FlowTarget => ({ url: c.url, adminToken })
  /** History rows, and the events they hold (one row per event before history went one row per write). */
  const historyCounts = async () => {
    const [{ perWrite }] = await sideSql.engine`select to_regclass('wix_engine.workflow_events') is not null as "perWrite"`
    const [r] = perWrite
      ? await sideSql.engine`select count(*)::int as rows, coalesce(sum(jsonb_array_length(events)), 0)::int as events from wix_engine.workflow_history`
      : await sideSql.engine`select count(*)::int as rows, count(*)::int as events from wix_engine.workflow_history`
    return { rows: Number(r!.rows), events: Number(r!.events) }
  }
  const dbStats = async (side: Side) => {
    // Backends flush their statistics at most once a second.
    await sleep(1_200)
    const [row] = await admin`select xact_commit::bigint as c, xact_rollback::bigint as r, tup_inserted + tup_updated + tup_deleted as w from pg_stat_database where datname = ${dbs[side]}`
    return { commits: Number(row!.c), rollbacks: Number(row!.r), rowWrites: Number(row!.w) }
  }
  // Its own connection, in the engine's benchmark database (the extension goes with it), named so
  // that its reading is not counted as either side's Postgres CPU.
  const walSql = postgres(withDatabase(o.serverUrl, dbs.engine), { max: 1, onnotice: () => {}, connection: { application_name: WAL_READER } })
  const backendPids = async (side: Side) =>
    (await admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${dbs[side]} and application_name not in ('', ${WAL_READER})`).map((r) => r.pid)

  try {
    const wal = await createWalMeter(walSql)
    // ---- counting pass: each side through a wire-protocol proxy, not timed ----------------------
    const counting: Record<string, unknown> = {}
    const target5432 = new URL(o.serverUrl)
    for (const side of SIDES) {
      const proxy = await startPgProxy({ host: target5432.hostname, port: Number(target5432.port || 5432) })
      const server = await start(side, viaPort(withDatabase(o.serverUrl, dbs[side]), proxy.port))
      await runFlows(target(server), Math.min(100, o.countFlows), o.concurrency, `${named(side)} (counting warm-up)`, true)
      await sleep(300)
      const before = proxy.snapshot()
      const h0 = side === 'engine' ? await historyCounts() : { rows: 0, events: 0 }
      // WAL is read back here, untimed: reading it takes Postgres CPU the timed rounds would share.
      const walMeter = await wal.start([dbs[side]])
      const r = await runFlows(target(server), o.countFlows, o.concurrency, `${named(side)} (counting)`)
      await sleep(300)
      const walBytes = await walMeter.stop()
      const d = diffCounts(before, proxy.snapshot())
      const h1 = side === 'engine' ? await historyCounts() : h0
      const events = h1.events - h0.events
      const flows = r.timings.flow.length
      const statements = [...d.byStatement].sort((a, b) => b[1] - a[1])
        .map(([sql, n]) => ({ what: label(sql), perFlow: round(n / flows, 3), sql }))
      counting[side] = {
        flows,
        errors: r.timings.errors,
        statementsPerFlow: round(d.statements / flows, 2),
        roundTripsPerFlow: round(d.roundTrips / flows, 2),
        wireBytesToServerPerFlow: Math.round(d.bytesToServer / flows),
        wireBytesFromServerPerFlow: Math.round(d.bytesFromServer / flows),
        // null when WAL was recycled before it could be read.
        walBytesPerFlow: walBytes.byDatabase[dbs[side]] == null ? null : Math.round(walBytes.byDatabase[dbs[side]]! / flows),
        serverWalBytesPerFlow: Math.round(walBytes.server / flows),
        // of which full-page images (the first change of a page after a checkpoint writes it whole)
        walFpiBytesPerFlow: walBytes.fpiByDatabase[dbs[side]] == null ? null : Math.round(walBytes.fpiByDatabase[dbs[side]]! / flows),
        walBytesPerFlowByKind: walBytes.byManager[dbs[side]] == null ? null
          : Object.fromEntries(Object.entries(walBytes.byManager[dbs[side]]!).map(([k, v]) => [k, Math.round(v / flows)])),
        ...(side === 'engine' && {
          historyRowsPerFlow: round((h1.rows - h0.rows) / flows, 2),
          // xstate.init is written by the same statement as the first event: not an event of its own.
          acceptedEventsPerFlow: round((events - flows) / flows, 2),
          statementsPerAcceptedEvent: round(d.statements / (events - flows), 2),
          roundTripsPerAcceptedEvent: round(d.roundTrips / (events - flows), 2),
          hotPathRoundTripsPerAcceptedEvent: round(
            statements.filter((s) => /^engine: (read|batched write)/.test(s.what)).reduce((a, s) => a + s.perFlow, 0) / ((events - flows) / flows), 2),
        }),
        statements,
      }
      await server.stop()
      await proxy.close()
      log(`${named(side)}: ${d.statements / flows} statements, ${d.roundTrips / flows} round trips per flow`)
    }

    // ---- timed rounds: both servers up, rounds alternate which side goes first ---------------------
    const servers = {} as Record<Side, Child>
    const rss = {} as Record<Side, { startMb: number; afterWarmupMb: number; peakMb: number; afterMb: number }>
    // Only the timed servers are profiled: the counting pass's proxy would skew the socket time.
    // Both are, so the engine's time can be read against the reference's, category by category.
    const profileArgs = (side: Side) => {
      if (!o.profileDir) return []
      mkdirSync(join(o.profileDir, side), { recursive: true })
      return ['--cpu-prof', `--cpu-prof-dir=${join(o.profileDir, side)}`]
    }
    const profiled: Record<Side, Window[]> = { engine: [], reference: [] }
    for (const side of SIDES) {
      servers[side] = await start(side, withDatabase(o.serverUrl, dbs[side]), profileArgs(side))
      await sleep(1_000)
      rss[side] = { startMb: memory(servers[side].pid).rssMb, afterWarmupMb: 0, peakMb: 0, afterMb: 0 }
    }
    for (const side of SIDES) {
      await runFlows(target(servers[side]), o.warmup, o.concurrency, `${named(side)} warm-up`)
      rss[side].afterWarmupMb = memory(servers[side].pid).rssMb
    }
    type RoundResult = ReturnType<typeof roundSummary>
    const rounds: Record<Side, RoundResult[]> = { engine: [], reference: [] }
    function roundSummary(r: Awaited<ReturnType<typeof runFlows>>, serverCpu: number, pgCpu: number, pgAllCpu: number, db: { commits: number; rowWrites: number }) {
      const flows = r.timings.flow.length
      return {
        flows, errors: r.timings.errors, firstErrors: r.timings.firstErrors, seconds: round(r.seconds),
        flowsPerSecond: round(r.flowsPerSecond),
        flow: summary(r.timings.flow),
        hops: Object.fromEntries(HOPS.map((h) => [h, summary(r.timings.hops[h])])),
        serverCpuMsPerFlow: round(serverCpu / flows),
        postgresCpuMsPerFlow: round(pgCpu / flows),
        postgresAllProcessesCpuMsPerFlow: round(pgAllCpu / flows),
        commitsPerFlow: round(db.commits / flows, 2),
        rowWritesPerFlow: round(db.rowWrites / flows, 2),
      }
    }
    for (let i = 0; i < o.rounds; i++) {
      const order = i % 2 === 0 ? SIDES : [...SIDES].reverse()
      for (const side of order) {
        const s = servers[side]
        const db0 = await dbStats(side)
        const cpu0 = cpuMs(s.pid)!
        const pg0 = postgresProcesses()
        const from = monotonicUs()
        const r = await runFlows(target(s), o.flows, o.concurrency, `round ${i + 1}/${o.rounds} ${named(side)}`)
        profiled[side].push({ fromUs: from, toUs: monotonicUs() })
        const cpu1 = cpuMs(s.pid)!
        const pg1 = postgresProcesses()
        const pids = await backendPids(side)
        const db1 = await dbStats(side)
        rounds[side].push(roundSummary(r, cpu1 - cpu0, cpuDelta(pg0, pg1, pids), cpuDelta(pg0, pg1),
          { commits: db1.commits - db0.commits, rowWrites: db1.rowWrites - db0.rowWrites }))
        rss[side].peakMb = memory(s.pid).peakMb
      }
    }
    // After the load: what the process gives back by itself, read each second for a minute. V8
    // keeps the heap it grew under load until its idle-time collector shrinks it, so a reading
    // right after the load says little about growth.
    log(`idling ${SETTLE_SECONDS} s, reading memory each second`)
    const settled = {} as Record<Side, { after60sMb: number; secondsToWithin20Mb: number | null }>
    for (const side of SIDES) settled[side] = { after60sMb: 0, secondsToWithin20Mb: null }
    for (let second = 1; second <= SETTLE_SECONDS; second++) {
      await sleep(1_000)
      for (const side of SIDES) {
        const { rssMb } = memory(servers[side].pid)
        if (second === 5) rss[side].afterMb = rssMb
        if (second === SETTLE_SECONDS) settled[side].after60sMb = round(rssMb, 1)
        if (settled[side].secondsToWithin20Mb === null && rssMb - rss[side].startMb <= 20) settled[side].secondsToWithin20Mb = second
      }
    }
    for (const side of SIDES) {
      rss[side].peakMb = memory(servers[side].pid).peakMb
      for (const k of Object.keys(rss[side]) as (keyof (typeof rss)[Side])[]) rss[side][k] = round(rss[side][k], 1)
    }
    for (const side of SIDES) await servers[side].stop()
    // Written by each server's process as it exits.
    const profile = o.profileDir && profileOf(join(o.profileDir, 'engine'), profiled.engine, o.flows * o.rounds)
    const referenceProfile = o.profileDir && profileOf(join(o.profileDir, 'reference'), profiled.reference, o.flows * o.rounds)

    const med = (side: Side, f: (r: RoundResult) => number) => round(median(rounds[side].map(f)))
    const sideSummary = (side: Side) => ({
      flowsPerSecond: med(side, (r) => r.flowsPerSecond),
      flow: { p50: med(side, (r) => r.flow.p50), p95: med(side, (r) => r.flow.p95), p99: med(side, (r) => r.flow.p99) },
      hops: Object.fromEntries(HOPS.map((h) => [h, { p50: med(side, (r) => r.hops[h]!.p50), p95: med(side, (r) => r.hops[h]!.p95), p99: med(side, (r) => r.hops[h]!.p99) }])),
      serverCpuMsPerFlow: med(side, (r) => r.serverCpuMsPerFlow),
      postgresCpuMsPerFlow: med(side, (r) => r.postgresCpuMsPerFlow),
      postgresAllProcessesCpuMsPerFlow: med(side, (r) => r.postgresAllProcessesCpuMsPerFlow),
      commitsPerFlow: med(side, (r) => r.commitsPerFlow),
      // From the counting pass: reading WAL back is kept out of the timed rounds.
      walBytesPerFlow: (counting[side] as { walBytesPerFlow: number | null }).walBytesPerFlow,
      serverWalBytesPerFlow: (counting[side] as { serverWalBytesPerFlow: number }).serverWalBytesPerFlow,
      errors: rounds[side].reduce((a, r) => a + r.errors, 0),
      rss: { ...rss[side], ...settled[side] },
    })
    const engine = sideSummary('engine')
    const reference = sideSummary('reference')
    return {
      options: o,
      summary: { engine, reference, throughputRatio: round(engine.flowsPerSecond / reference.flowsPerSecond, 3) },
      counting,
      rounds,
      ...(profile && { profile }),
      ...(referenceProfile && { referenceProfile }),
    }
  } finally {
    for (const side of SIDES) await sideSql[side].end({ timeout: 1 })
    await walSql.end({ timeout: 1 })
    if (!o.keep) for (const side of SIDES) await admin.unsafe(`drop database if exists ${dbs[side]} with (force)`)
    await admin.end()
  }
}

/** A timed server's profile, its timed rounds only, per flow; kept beside the JSON it is folded into. */
function profileOf(dir: string, windows: Window[], flows: number) {
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main one (1 is tsx's loader).
  const file = readdirSync(dir).find((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f))
  if (!file) throw new Error(`no .cpuprofile in ${dir}: did the server exit cleanly?`)
  const breakdown = fold(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, flows, windows)
  writeFileSync(join(dir, 'windows.json'), `${JSON.stringify({ flows, windows }, null, 2)}\n`)
  return { file: join(dir, file), ...breakdown }
}
