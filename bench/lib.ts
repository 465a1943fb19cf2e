import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { request } from 'undici'

/** Clock ticks per second for /proc/<pid>/stat (`getconf CLK_TCK`: 100 on Linux). */
const CLK_TCK = 100

/** CPU (user + system) a process has used so far, in ms; undefined once it is gone. */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // comm may hold spaces and parentheses: fields are counted from the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK
  } catch {
    return undefined
  }
}

/** Every process named `postgres` (the server and all its backends) with its CPU so far. */
export function postgresProcesses(): Map<number, number> {
  const out = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== 'postgres') continue
      const ms = cpuMs(Number(name))
      if (ms !== undefined) out.set(Number(name), ms)
    } catch {
      /* gone meanwhile */
    }
  }
  return out
}

/** CPU ms used between two samples by the given pids (a pid new in `after` counts in full). */
export function cpuDelta(before: Map<number, number>, after: Map<number, number>, pids?: Iterable<number>): number {
  let total = 0
  for (const pid of pids ?? after.keys()) {
    const a = after.get(pid)
    if (a === undefined) continue
    total += a - (before.get(pid) ?? 0)
  }
  return total
}

/** VmRSS and VmHWM (peak) of a process, in MB. */
export function memory(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN)
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 }
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]!
}

export function summary(values: number[]) {
  const s = [...values].sort((a, b) => a - b)
  return { n: s.length, p50: round(percentile(s, 50)), p95: round(percentile(s, 95)), p99: round(percentile(s, 99)), max: round(s.at(-1) ?? NaN) }
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

export const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(100)
  }
  throw new Error(`timed out waiting until ${what}`)
}

export interface Child {
  child: ChildProcess
  pid: number
  url: string
  stop(): Promise<void>
}

/** An entry point in a process of its own (a `.ts` one under `--import tsx`), healthy at `healthPath`. */
export async function startProcess(entry: string, env: Record<string, string>, port: number, healthPath: string, nodeArgs: string[] = []): Promise<Child> {
  const loader = entry.endsWith('.ts') ? ['--import', 'tsx'] : []
  const child = spawn(process.execPath, [...nodeArgs, ...loader, entry], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  const url = `http://127.0.0.1:${port}`
  await Promise.race([
    waitUntil(`${entry} answers`, async () => (await request(`${url}${healthPath}`).then(async (r) => (await r.body.dump(), r.statusCode))) === 200),
    exited.then(() => { throw new Error(`${entry} exited during start`) }),
  ])
  return {
    child,
    pid: child.pid!,
    url,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      await Promise.race([exited, sleep(15_000).then(() => child.kill('SIGKILL'))])
    },
  }
}

export function loadAverage(): number[] {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number)
}
