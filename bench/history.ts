import { appendFileSync, existsSync, writeFileSync } from 'node:fs'
import { median, round } from './lib.ts'

/**
 * bench/results/history.md: one Markdown row per measured mode of each `npm run bench`, newest
 * last, so runs can be compared without keeping every run's JSON in git (that goes to
 * results/runs/, ignored). The row holds what a reader compares across runs; the rest is in the
 * run's JSON on the machine that ran it, or in latest.md for the newest.
 */

type Side = { flowsPerSecond: number; flow: { p95: number }; serverCpuMsPerFlow: number; postgresCpuMsPerFlow: number; walBytesPerFlow?: number | null }
/** What a row reads of a run's JSON (the `results` object of bench/run.ts); older runs lack `revision`. */
export interface RunRecord {
  startedAt: string
  machine: { cpus: number; cpuModel: string; ramGb: number; node: string; postgres: string; loadAverageAtStart: number[] }
  /** The checkout benched: its commit, whether files outside bench/results differed from it, and --against resolved. */
  revision?: { commit: string; dirty?: boolean; against?: string }
  flows?: {
    options: { flows: number; concurrency: number; rounds: number; entries?: unknown; profileDir?: string; against?: string }
    summary: { engine: Side; reference: Side; throughputRatio: number }
    rounds: Record<'engine' | 'reference', { rowWritesPerFlow?: number }[]>
  }
  list?: { rows: number; targetP95Ms: number; cases: Record<string, { p95: number }> }
}

const COLUMNS = ['started (UTC)', 'mode', 'revision', 'host', 'size', 'flows/s engine / other', 'flows/s ratio',
  'flow p95 ms engine / other', 'CPU / flow ratio', 'row writes / flow engine / other', 'WAL bytes / flow engine / other', 'list: worst p95 ms']

const PREAMBLE = `# Benchmark history

One row per mode of each \`npm run bench\`, appended by bench/history.ts, newest last. "other" is the
bare reference, or the engine at the \`--against\` revision ("vs" in the revision column). Medians
of the rounds; CPU is server + Postgres backends. A run's full JSON stays on the machine that ran
it (\`bench/results/runs/\`, not in git); the newest of each mode is in \`latest.md\` / \`latest.json\`.
A revision "+dirty" means the working tree outside bench/results differed from it. Rows before
2026-12-04 were converted from the JSON files then kept in git, which did not record the
revision: they name the commit that filed that JSON instead ("filed in"). Ratios compare within
one host only: the same code moved by a third between hosts and hours.

| ${COLUMNS.join(' | ')} |
|${COLUMNS.map(() => '---').join('|')}|
`

/** Appends `mode`'s row of `run` to `file`, writing the file's heading and table header first if it is new. */
export function appendHistory(file: URL | string, run: RunRecord, mode: 'flows' | 'list') {
  if (!existsSync(file)) writeFileSync(file, PREAMBLE)
  appendFileSync(file, `${historyRow(run, mode)}\n`)
}

export function historyRow(run: RunRecord, mode: 'flows' | 'list'): string {
  const m = run.machine
  const host = `${m.cpus} × ${m.cpuModel}, ${m.ramGb} GB, Node ${m.node}, ${m.postgres.split(' (')[0]}, load ${m.loadAverageAtStart[0]}`
  const cells = [run.startedAt.slice(0, 16).replace('T', ' '), mode, revision(run), host]
  if (mode === 'flows') {
    const f = run.flows!
    const { engine: e, reference: r } = f.summary
    const o = f.options
    const cpu = (e.serverCpuMsPerFlow + e.postgresCpuMsPerFlow) / (r.serverCpuMsPerFlow + r.postgresCpuMsPerFlow)
    cells.push(
      `${o.rounds} × ${o.flows} at ${o.concurrency}${o.entries ? '' : ', tsx'}${o.profileDir ? ', profiled' : ''}`,
      `${e.flowsPerSecond} / ${r.flowsPerSecond}`, `**${f.summary.throughputRatio}×**`,
      `${e.flow.p95} / ${r.flow.p95}`, `${cpu.toFixed(2)}×`,
      `${medianOf(f.rounds.engine)} / ${medianOf(f.rounds.reference)}`,
      `${e.walBytesPerFlow ?? '–'} / ${r.walBytesPerFlow ?? '–'}`, '')
  } else {
    const l = run.list!
    const [name, worst] = Object.entries(l.cases).sort((a, b) => b[1].p95 - a[1].p95)[0]!
    cells.push(`${l.rows.toLocaleString('en')} rows`, '', '', '', '', '', '',
      `${worst.p95} (${name}; target ${l.targetP95Ms} ${worst.p95 < l.targetP95Ms ? '✓' : '✗'})`)
  }
  return `| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`
}

function revision(run: RunRecord) {
  const against = run.revision?.against ?? run.flows?.options.against
  const own = run.revision ? `${run.revision.commit}${run.revision.dirty ? '+dirty' : ''}` : '?'
  return against ? `${own} vs ${against}` : own
}

/** Row writes per flow, median of the rounds (as the summary's other numbers); '–' where not recorded. */
function medianOf(rounds: { rowWritesPerFlow?: number }[]) {
  const xs = rounds.flatMap((r) => (r.rowWritesPerFlow === undefined ? [] : [r.rowWritesPerFlow]))
  return xs.length ? round(median(xs)) : '–'
}
