import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { round } from './lib.ts'

/**
 * Folds a V8 `.cpuprofile` (from `node --cpu-prof`) into self time per category — package, our
 * module, node internals, GC — per flow. Run by `npm run bench -- --profile`; by hand:
 *   npx tsx bench/profile.ts <file.cpuprofile> [flows] [fromUs toUs]
 */

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
export interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }
/** A stretch of the profile, in the profile's clock (µs of CLOCK_MONOTONIC, as `process.hrtime`). */
export interface Window { fromUs: number; toUs: number }

const PACKAGES: [RegExp, string][] = [
  [/\/node_modules\/xstate\//, 'xstate'],
  [/\/node_modules\/(zod|fastify-type-provider-zod)\//, 'zod'],
  [/\/node_modules\/(pino|pino-std-serializers|fast-redact|@pinojs\/redact|sonic-boom|thread-stream|quick-format-unescaped|fast-safe-stringify|on-exit-leak-free|safe-stable-stringify|atomic-sleep)\//, 'logging (pino, redaction)'],
  [/\/node_modules\/(prom-client|tdigest|bintrees)\//, 'metrics (prom-client)'],
  [/\/node_modules\/(cookie|@fastify\/cookie|cookie-signature)\//, 'cookies'],
  [/\/node_modules\/postgres\//, 'postgres driver'],
  [/\/node_modules\/undici\/|^wasm:\/\//, 'undici (Wix client)'],
  [/\/node_modules\/@fastify\/rate-limit\/|\/node_modules\/toad-cache\//, 'rate limit'],
  [/\/node_modules\/(fastify|find-my-way|avvio|fast-json-stringify|light-my-request|@fastify\/[^/]+|fast-querystring|fast-decode-uri-component|process-warning|abstract-logging|ret|safe-regex2|fast-uri|json-schema-ref-resolver|rfdc|secure-json-parse|content-type|toad-cache|fastify-plugin|proxy-addr|forwarded|ipaddr\.js)\//, 'fastify (router, hooks, reply)'],
  [/\/node_modules\/jose\//, 'jose'],
  [/\/node_modules\/tsx\/|\/node_modules\/esbuild\//, 'tsx (loader)'],
]

/** The category of one frame; `undefined` for a native frame, which takes its caller's. */
export function categorise(frame: CallFrame): string | undefined {
  const { url, functionName } = frame
  if (functionName === '(garbage collector)') return 'GC'
  if (functionName === '(program)') return '(program: native, not attributed)'
  if (functionName === '(idle)' || functionName === '(root)') return '(idle)'
  if (!url) return undefined
  for (const [re, name] of PACKAGES) if (re.test(url)) return name
  const ours = /\/(src|machines|bench)\/(.+?)\.(ts|js)$/.exec(url)
  if (ours && !url.includes('/node_modules/')) return `ours: ${ours[1]}/${ours[2]}`
  if (url.includes('/node_modules/')) return `other package: ${/\/node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)![1]}`
  if (/^node:(internal\/)?(net|stream|internal\/streams|_http_|http|internal\/http)|^node:internal\/(stream_base_commons|streams)/.test(url)) return 'node: sockets, streams, http'
  if (/^node:(internal\/)?crypto/.test(url)) return 'node: crypto'
  if (/^node:internal\/(timers|process\/task_queues|async_hooks)|^node:timers/.test(url)) return 'node: timers, microtasks'
  if (url.startsWith('node:')) return 'node: other internals'
  return `other: ${url}`
}

/** Node's own code and GC do work for someone: a frame of these takes its nearest caller's origin. */
const borrowed = (category: string) => category.startsWith('node:') || category.startsWith('(') || category === 'GC'

interface Share { name: string; ms: number; msPerFlow: number; percent: number }
export interface Breakdown {
  flows: number
  sampledMs: number
  idleMs: number
  categories: Share[]
  /** The same time, node internals and native code charged to the package or module that called them. */
  origins: Share[]
  functions: { name: string; category: string; msPerFlow: number; percent: number }[]
}

/** Self time by category (a native frame counts toward its nearest JS caller's) and the top functions. */
export function fold(profile: CpuProfile, flows: number, windows?: Window[], top = 25): Breakdown {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const categoryOf = new Map<number, string>()
  const resolve = (id: number): string => {
    const known = categoryOf.get(id)
    if (known) return known
    const own = categorise(byId.get(id)!.callFrame)
    const p = parent.get(id)
    const c = own ?? (p === undefined ? 'native (no JS caller)' : resolve(p))
    categoryOf.set(id, c)
    return c
  }
  const frameName = (f: CallFrame) =>
    `${f.functionName || '(anonymous)'} ${f.url ? `${f.url.replace(/^.*\/(node_modules|wt-[^/]+|dist)\//, '')}:${f.lineNumber + 1}` : '(native)'}`
  const originOf = new Map<number, string>()
  const origin = (id: number): string => {
    const known = originOf.get(id)
    if (known) return known
    const own = resolve(id)
    const p = parent.get(id)
    const o = !borrowed(own) || p === undefined || resolve(p) === '(idle)' ? own : origin(p)
    originOf.set(id, o)
    return o
  }
  const cats = new Map<string, number>()
  const origins = new Map<string, number>()
  const fns = new Map<string, { category: string; us: number }>()
  let t = profile.startTime
  let sampled = 0
  let idle = 0
  for (let i = 0; i < profile.samples.length; i++) {
    // A sample's time is the interval that ends at it.
    const dt = profile.timeDeltas[i]!
    t += dt
    if (windows && !windows.some((w) => t >= w.fromUs && t <= w.toUs)) continue
    const id = profile.samples[i]!
    const category = resolve(id)
    if (category === '(idle)') { idle += dt; continue }
    sampled += dt
    cats.set(category, (cats.get(category) ?? 0) + dt)
    const o = origin(id)
    origins.set(o, (origins.get(o) ?? 0) + dt)
    const name = frameName(byId.get(id)!.callFrame)
    const f = fns.get(name) ?? { category, us: 0 }
    f.us += dt
    fns.set(name, f)
  }
  const perFlow = (us: number) => round(us / 1000 / flows, 3)
  const percent = (us: number) => round((100 * us) / sampled, 1)
  const shares = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, ms: round(us / 1000), msPerFlow: perFlow(us), percent: percent(us) }))
  return {
    flows,
    sampledMs: round(sampled / 1000),
    idleMs: round(idle / 1000),
    categories: shares(cats),
    origins: shares(origins),
    functions: [...fns].sort((a, b) => b[1].us - a[1].us).slice(0, top)
      .map(([name, f]) => ({ name, category: f.category, msPerFlow: perFlow(f.us), percent: percent(f.us) })),
  }
}

export function breakdownMarkdown(b: Breakdown, rows = 20): string {
  const table = (title: string, shares: Share[]) =>
    [`| ${title} | ms / flow | % |`, '|---|---:|---:|', ...shares.slice(0, rows).map((c) => `| ${c.name} | ${c.msPerFlow} | ${c.percent} |`), '']
  return [
    `${b.flows} flows; ${round(b.sampledMs / b.flows, 3)} ms of sampled main-thread CPU per flow.`, '',
    ...table('category (self time)', b.categories),
    ...table('origin (node internals, native code and GC charged to their nearest caller)', b.origins),
    '| function (self time) | category | ms / flow | % |', '|---|---|---:|---:|',
    ...b.functions.map((f) => `| \`${f.name}\` | ${f.category} | ${f.msPerFlow} | ${f.percent} |`), '',
  ].join('\n')
}

/**
 * The engine's time against the reference's, by origin, biggest difference first: where the
 * engine spends the CPU the reference does not.
 */
export function comparisonMarkdown(engine: Breakdown, reference: Breakdown, rows = 20): string {
  const perFlow = (b: Breakdown) => new Map(b.origins.map((o) => [o.name, o.msPerFlow]))
  const e = perFlow(engine)
  const r = perFlow(reference)
  const names = [...new Set([...e.keys(), ...r.keys()])]
  const diff = (name: string) => (e.get(name) ?? 0) - (r.get(name) ?? 0)
  const total = (b: Breakdown) => round(b.sampledMs / b.flows, 3)
  return [
    '| origin | engine ms / flow | reference ms / flow | difference |', '|---|---:|---:|---:|',
    `| **sampled main-thread CPU** | ${total(engine)} | ${total(reference)} | ${round(total(engine) - total(reference), 3)} |`,
    ...names.sort((a, b) => diff(b) - diff(a)).slice(0, rows)
      .map((n) => `| ${n} | ${e.get(n) ?? 0} | ${r.get(n) ?? 0} | ${round(diff(n), 3)} |`),
    '',
  ].join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, flows, from, to] = process.argv.slice(2)
  if (!file) throw new Error('usage: tsx bench/profile.ts <file.cpuprofile> [flows] [fromUs toUs]')
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const windows = from && to ? [{ fromUs: Number(from), toUs: Number(to) }] : undefined
  console.log(breakdownMarkdown(fold(profile, Number(flows ?? 1), windows)))
}
