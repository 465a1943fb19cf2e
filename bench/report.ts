import { breakdownMarkdown, comparisonMarkdown, type Breakdown } from './profile.ts'

/** The short Markdown summary of bench/results/latest.json. */

type Quantiles = { p50: number; p95: number; p99: number }
interface SideSummary {
  flowsPerSecond: number
  flow: Quantiles
  hops: Record<string, Quantiles>
  serverCpuMsPerFlow: number
  postgresCpuMsPerFlow: number
  postgresAllProcessesCpuMsPerFlow: number
  commitsPerFlow: number
  walBytesPerFlow?: number | null
  serverWalBytesPerFlow?: number
  errors: number
  rss: { startMb: number; afterWarmupMb: number; peakMb: number; afterMb: number; after60sMb: number; secondsToWithin20Mb: number | null }
}
interface Machine { cpus: number; cpuModel: string; ramGb: number; kernel: string; node: string; postgres: string; loadAverageAtStart: number[]; loadAverageAtEnd?: number[]; postgresSettings: Record<string, string> }
interface Latest {
  flows?: {
    machine: Machine; startedAt: string
    options: { flows: number; concurrency: number; rounds: number; warmup: number; countFlows: number; entries?: Record<string, string>; against?: string }
    summary: { engine: SideSummary; reference: SideSummary; throughputRatio: number }
    profile?: Breakdown & { file: string }
    referenceProfile?: Breakdown & { file: string }
    counting: Record<string, { statementsPerFlow: number; roundTripsPerFlow: number; wireBytesToServerPerFlow?: number; wireBytesFromServerPerFlow?: number; walFpiBytesPerFlow?: number | null; walBytesPerFlowByKind?: Record<string, number> | null; acceptedEventsPerFlow?: number; statementsPerAcceptedEvent?: number; roundTripsPerAcceptedEvent?: number; hotPathRoundTripsPerAcceptedEvent?: number; statements: { what: string; perFlow: number }[] }>
  }
  list?: { machine: Machine; startedAt: string; rows: number; seedSeconds: number; targetP95Ms: number; cases: Record<string, { p50: number; p95: number; meetsTarget: boolean }> }
}

const machineLine = (m: Machine, at: string) =>
  `${at.slice(0, 16).replace('T', ' ')} UTC — ${m.cpus} × ${m.cpuModel}, ${m.ramGb} GB RAM, ${m.kernel}; Node ${m.node}; ${m.postgres} on the same machine ` +
  `(synchronous_commit=${m.postgresSettings.synchronous_commit}, fsync=${m.postgresSettings.fsync}); load average ${m.loadAverageAtStart[0]} at start, ${m.loadAverageAtEnd?.[0] ?? '?'} at end.`

export function markdown(r: Latest): string {
  const out: string[] = ['# Benchmark results (latest)', '']
  if (r.flows) {
    const { engine: e, reference: ref, throughputRatio } = r.flows.summary
    const o = r.flows.options
    const c = r.flows.counting as Record<string, Latest['flows'] extends infer F ? F extends { counting: infer C } ? C[keyof C] : never : never>
    // --against: the other side is the engine at an earlier revision, not the reference.
    const other = o.against ? `engine at ${o.against}` : 'reference'
    out.push(`## Complete installs (engine vs ${o.against ? `the engine at ${o.against}` : 'bare reference'})`, '', machineLine(r.flows.machine, r.flows.startedAt), '',
      `${o.rounds} rounds × ${o.flows} flows per side at concurrency ${o.concurrency}, alternating; medians of the rounds; ` +
      `both servers ${o.entries ? 'compiled (plain node, no loader)' : 'from TypeScript under tsx'}. ` +
      'A flow: app-url → Wix approve (fake, own process) → callback with code exchange → finish with refresh and bi-event → `Finished`.', '',
      `| | engine | ${other} | engine / ${other} |`, '|---|---:|---:|---:|',
      `| flows/s | ${e.flowsPerSecond} | ${ref.flowsPerSecond} | **${throughputRatio}×** |`,
      `| flow p50 / p95 / p99 ms | ${e.flow.p50} / ${e.flow.p95} / ${e.flow.p99} | ${ref.flow.p50} / ${ref.flow.p95} / ${ref.flow.p99} | |`,
      ...Object.keys(e.hops).map((h) => `| ${h} p50 / p95 / p99 ms | ${e.hops[h]!.p50} / ${e.hops[h]!.p95} / ${e.hops[h]!.p99} | ${ref.hops[h]!.p50} / ${ref.hops[h]!.p95} / ${ref.hops[h]!.p99} | |`),
      `| server CPU ms / flow | ${e.serverCpuMsPerFlow} | ${ref.serverCpuMsPerFlow} | ${(e.serverCpuMsPerFlow / ref.serverCpuMsPerFlow).toFixed(2)}× |`,
      `| Postgres CPU ms / flow (its backends) | ${e.postgresCpuMsPerFlow} | ${ref.postgresCpuMsPerFlow} | ${(e.postgresCpuMsPerFlow / ref.postgresCpuMsPerFlow).toFixed(2)}× |`,
      `| server + Postgres CPU ms / flow | ${round2(e.serverCpuMsPerFlow + e.postgresCpuMsPerFlow)} | ${round2(ref.serverCpuMsPerFlow + ref.postgresCpuMsPerFlow)} | ${((e.serverCpuMsPerFlow + e.postgresCpuMsPerFlow) / (ref.serverCpuMsPerFlow + ref.postgresCpuMsPerFlow)).toFixed(2)}× |`,
      `| commits / flow (pg_stat_database) | ${e.commitsPerFlow} | ${ref.commitsPerFlow} | |`,
      `| WAL bytes / flow: its database's records (pg_walinspect) | ${e.walBytesPerFlow ?? 'not read'} | ${ref.walBytesPerFlow ?? 'not read'} | |`,
      `| WAL bytes / flow: the whole server meanwhile | ${e.serverWalBytesPerFlow ?? '–'} | ${ref.serverWalBytesPerFlow ?? '–'} | |`,
      `| WAL bytes / flow: of its database's, full-page images | ${c.engine!.walFpiBytesPerFlow ?? '–'} | ${c.reference!.walFpiBytesPerFlow ?? '–'} | |`,
      `| WAL bytes / flow: of its database's, by kind | ${walKinds(c.engine!.walBytesPerFlowByKind)} | ${walKinds(c.reference!.walBytesPerFlowByKind)} | |`,
      `| statements / flow (wire count) | ${c.engine!.statementsPerFlow} | ${c.reference!.statementsPerFlow} | |`,
      `| round trips / flow (wire count) | ${c.engine!.roundTripsPerFlow} | ${c.reference!.roundTripsPerFlow} | |`,
      `| bytes / flow to / from Postgres (wire count) | ${c.engine!.wireBytesToServerPerFlow} / ${c.engine!.wireBytesFromServerPerFlow} | ${c.reference!.wireBytesToServerPerFlow} / ${c.reference!.wireBytesFromServerPerFlow} | |`,
      `| server RSS MB start → peak → 5 s / 60 s idle after | ${e.rss.startMb} → ${e.rss.peakMb} → ${e.rss.afterMb} / ${e.rss.after60sMb} | ${ref.rss.startMb} → ${ref.rss.peakMb} → ${ref.rss.afterMb} / ${ref.rss.after60sMb} | |`,
      `| seconds idle until RSS is within 20 MB of start | ${e.rss.secondsToWithin20Mb ?? 'not in 60'} | ${ref.rss.secondsToWithin20Mb ?? 'not in 60'} | |`,
      `| errors | ${e.errors} | ${ref.errors} | |`, '',
      `Engine per accepted event (${c.engine!.acceptedEventsPerFlow} events per flow, \`xstate.init\` not counted): ` +
      `${c.engine!.statementsPerAcceptedEvent} statements and ${c.engine!.roundTripsPerAcceptedEvent} round trips in all; ` +
      `${c.engine!.hotPathRoundTripsPerAcceptedEvent} on the engine's own send path (fenced read + one write).`, '',
      '| engine statement | per flow |', '|---|---:|',
      ...c.engine!.statements.slice(0, 14).map((s) => `| ${s.what} | ${s.perFlow} |`), '')
    if (r.flows.profile) {
      out.push('### Engine server CPU profile (timed rounds, self time)', '', `\`${r.flows.profile.file}\``, '', breakdownMarkdown(r.flows.profile))
    }
    if (r.flows.profile && r.flows.referenceProfile) {
      out.push('### Engine against reference, by origin (timed rounds, sampled)', '', `\`${r.flows.referenceProfile.file}\``, '',
        comparisonMarkdown(r.flows.profile, r.flows.referenceProfile))
    }
  }
  if (r.list) {
    const l = r.list
    out.push(`## Admin list at ${l.rows.toLocaleString('en')} installations`, '', machineLine(l.machine, l.startedAt), '',
      `Seeded with \`generate_series\` in ${l.seedSeconds} s. \`GET /api/installations\`, sequential, target p95 < ${l.targetP95Ms} ms.`, '',
      '| case | p50 ms | p95 ms | target |', '|---|---:|---:|:---:|',
      ...Object.entries(l.cases).map(([k, v]) => `| ${k} | ${v.p50} | ${v.p95} | ${v.meetsTarget ? '✓' : '✗'} |`), '')
  }
  return `${out.join('\n')}\n`
}

const round2 = (n: number) => Math.round(n * 100) / 100
/** `Heap 9 012, Btree 4 100, …`: the biggest kinds of WAL record first. */
const walKinds = (kinds: Record<string, number> | null | undefined) =>
  kinds ? Object.entries(kinds).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ') : '–'
