import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { compileServers } from './compile.ts'
import { runFlowsMode } from './flows-mode.ts'
import { appendHistory, type RunRecord } from './history.ts'
import { runListMode } from './list-mode.ts'
import { freePort, loadAverage, startProcess } from './lib.ts'
import { markdown } from './report.ts'

/**
 * `npm run bench` — the engine against a bare reference over real HTTP, and the admin list at a
 * million installations. Options (argv, or BENCH_* in the environment):
 *   --mode flows|list|all   (all)
 *   --flows N               flows per side per round (3000)
 *   --concurrency C         flows in flight (32)
 *   --rounds R              rounds, alternating which side goes first (3)
 *   --warmup N              untimed flows per side before the rounds (300)
 *   --count-flows N         flows per side in the untimed statement-counting pass (300)
 *   --rows N                installations seeded for the list mode (1000000)
 *   --keep                  keep the benchmark databases
 *   --log-level L           both servers' LOG_LEVEL (warn); the service's default is info
 *   --profile               CPU-profile both timed servers; their breakdowns per flow go in the results
 *   --tsx                   run both servers from their TypeScript sources under tsx, not compiled
 *   --against REV           the other side is the engine at git revision REV, not the reference (A/B of a change)
 * Writes results/latest.json and latest.md (the newest run of each mode), a row a mode in
 * results/history.md, and the run's full JSON in results/runs/ (not in git).
 * Postgres: DATABASE_URL (a server; databases are created and dropped), default postgres://postgres@127.0.0.1:5432/postgres.
 */
const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: process.env.BENCH_MODE ?? 'all' },
    flows: { type: 'string', default: process.env.BENCH_FLOWS ?? '3000' },
    concurrency: { type: 'string', default: process.env.BENCH_CONCURRENCY ?? '32' },
    rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '3' },
    warmup: { type: 'string', default: process.env.BENCH_WARMUP ?? '300' },
    'count-flows': { type: 'string', default: process.env.BENCH_COUNT_FLOWS ?? '300' },
    rows: { type: 'string', default: process.env.BENCH_ROWS ?? '1000000' },
    keep: { type: 'boolean', default: false },
    'log-level': { type: 'string', default: process.env.BENCH_LOG_LEVEL ?? 'warn' },
    profile: { type: 'boolean', default: process.env.BENCH_PROFILE === '1' },
    tsx: { type: 'boolean', default: process.env.BENCH_TSX === '1' },
    against: { type: 'string', default: process.env.BENCH_AGAINST },
  },
})
const mode = values.mode!
if (!['flows', 'list', 'all'].includes(mode)) throw new Error('--mode must be flows, list or all')
if (values.against && values.tsx) throw new Error('--against compiles both versions of the engine: drop --tsx')
const int = (name: string, v: string | undefined) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number`)
  return n
}
const serverUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres'
const log = (s: string) => console.log(s)

async function machine() {
  const sql = postgres(serverUrl, { max: 1, onnotice: () => {} })
  const [{ version }] = (await sql`select version()`) as unknown as [{ version: string }]
  const settings = await sql<{ name: string; setting: string }[]>`
    select name, setting from pg_settings where name in ('synchronous_commit', 'fsync', 'shared_buffers', 'max_connections', 'wal_level')`
  await sql.end()
  let kernel = ''
  try { kernel = execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim() } catch { /* not essential */ }
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    ramGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel,
    node: process.version,
    postgres: version.split(' on ')[0],
    postgresSettings: Object.fromEntries(settings.map((s) => [s.name, s.setting])),
    loadAverageAtStart: loadAverage(),
  }
}

/** The checkout benched, for the history: a run's numbers mean little without the code they measured. */
function revision() {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: new URL('..', import.meta.url), encoding: 'utf8' }).trim()
  try {
    return {
      commit: git('rev-parse', '--short', 'HEAD'),
      // The bench's own results are rewritten by every run: a change there is not a change benched.
      dirty: git('status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)bench/results').length > 0,
      ...(values.against && { against: git('rev-parse', '--short', values.against) }),
    }
  } catch { return undefined /* not a git checkout: the row says '?' */ }
}

const dir = new URL('./results/', import.meta.url)
const historyFile = new URL('history.md', dir)
const stamp = () => started.toISOString().replace(/[:.]/g, '-')

/**
 * Writes what is measured so far: a later mode that fails does not lose an earlier one. The run's
 * full JSON goes to results/runs/ (git-ignored): history.md and latest.md are what is kept.
 */
function save(final: boolean) {
  ;(results.machine as { loadAverageAtEnd?: number[] }).loadAverageAtEnd = loadAverage()
  results.finishedAt = new Date().toISOString()
  mkdirSync(new URL('runs/', dir), { recursive: true })
  writeFileSync(new URL(`runs/${stamp()}-${mode}.json`, dir), `${JSON.stringify(results, null, 2)}\n`)
  // latest.json holds the newest result of each mode, so a list-only run keeps the last flows numbers.
  const latestPath = new URL('latest.json', dir)
  const previous = existsSync(latestPath) ? (JSON.parse(readFileSync(latestPath, 'utf8')) as Record<string, unknown>) : {}
  const latest = {
    flows: results.flows ? { machine: info, startedAt: results.startedAt, ...(results.flows as object) } : previous.flows,
    list: results.list ? { machine: info, startedAt: results.startedAt, ...(results.list as object) } : previous.list,
  }
  writeFileSync(latestPath, `${JSON.stringify(latest, null, 2)}\n`)
  const md = markdown(latest as never)
  writeFileSync(new URL('latest.md', dir), md)
  if (final) {
    log(`\n${md}`)
    log(`results: bench/results/runs/${stamp()}-${mode}.json, bench/results/latest.md, a row a mode in bench/results/history.md`)
  }
}

const started = new Date()
const info = await machine()
log(`bench ${mode} on ${info.cpus} × ${info.cpuModel}, ${info.ramGb} GB, ${info.node}, ${info.postgres}; load ${info.loadAverageAtStart.join(' ')}`)
const results: Record<string, unknown> = { startedAt: started.toISOString(), mode, machine: info, revision: revision() }

if (mode === 'flows' || mode === 'all') {
  const fakeCreds = { appId: `bench-app-${randomBytes(4).toString('hex')}`, appSecret: randomBytes(24).toString('hex') }
  const fakePort = await freePort()
  // Production runs compiled JavaScript (the Dockerfile's CMD, `npm run start:prod`): so do both sides.
  const compiled = values.tsx ? undefined : compileServers(log, values.against)
  const fake = await startProcess('bench/fake-wix-server.ts', { WIX_APP_ID: fakeCreds.appId, WIX_APP_SECRET: fakeCreds.appSecret }, fakePort, '/installer/close-window')
    .catch((err) => { compiled?.remove(); throw err })
  try {
    results.flows = await runFlowsMode({
      serverUrl,
      flows: int('flows', values.flows),
      concurrency: int('concurrency', values.concurrency),
      rounds: int('rounds', values.rounds),
      warmup: int('warmup', values.warmup),
      countFlows: int('count-flows', values['count-flows']),
      keep: values.keep!,
      logLevel: values['log-level']!,
      profileDir: values.profile ? mkdtempSync(join(tmpdir(), 'wie-profile-')) : undefined,
      entries: compiled,
      against: values.against,
    }, fake.url, fakeCreds, log)
  } finally {
    await fake.stop()
    compiled?.remove()
  }
  save(false)
  appendHistory(historyFile, results as unknown as RunRecord, 'flows')
}
if (mode === 'list' || mode === 'all') {
  results.list = await runListMode({ serverUrl, rows: int('rows', values.rows), keep: values.keep! }, log)
  appendHistory(historyFile, results as unknown as RunRecord, 'list')
}
save(true)
process.exit(0)
