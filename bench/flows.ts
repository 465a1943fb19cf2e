import { performance } from 'node:perf_hooks'
import { Agent, request } from 'undici'

/** One complete install, as a browser, Wix and the app's backend drive it, hop by hop. */
export const HOPS = ['appUrl', 'approve', 'callback', 'finish'] as const
export type Hop = (typeof HOPS)[number]

export interface FlowTimings {
  hops: Record<Hop, number[]>
  flow: number[]
  errors: number
  firstErrors: string[]
}

export interface FlowTarget {
  /** Our server (engine or reference). */
  url: string
  adminToken: string
}

// Enough sockets for every worker on each origin; no redirect is followed.
const agent = new Agent({ connections: 256, keepAliveTimeout: 30_000, pipelining: 1 })

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { method: 'GET', headers, dispatcher: agent })
  await res.body.dump()
  return res
}

class FlowError extends Error {}

function expect(hop: Hop, status: number, want: number) {
  if (status !== want) throw new FlowError(`${hop}: HTTP ${status}, expected ${want}`)
}

/** Keeps the cookies our server sets (one flow = one browser). */
function remember(jar: Map<string, string>, setCookie: string | string[] | undefined) {
  for (const line of [setCookie ?? []].flat()) {
    const pair = line.split(';', 1)[0]!
    const eq = pair.indexOf('=')
    const value = pair.slice(eq + 1)
    if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) jar.delete(pair.slice(0, eq))
    else jar.set(pair.slice(0, eq), value)
  }
}
const cookieHeader = (jar: Map<string, string>) => [...jar].map(([k, v]) => `${k}=${v}`).join('; ')

export async function oneFlow(target: FlowTarget, n: number, t: FlowTimings) {
  const jar = new Map<string, string>()
  const started = performance.now()
  let at = started
  const lap = (hop: Hop) => {
    const now = performance.now()
    t.hops[hop].push(now - at)
    at = now
  }
  // 1–2: Wix opens the App URL; we answer with the installer.
  const a = await get(`${target.url}/wix/app-url?token=bench-${n}-${Math.random().toString(36).slice(2)}`)
  expect('appUrl', a.statusCode, 302)
  remember(jar, a.headers['set-cookie'])
  lap('appUrl')
  // The site owner approves on Wix's consent screen (the fake, in its own process).
  const approve = String(a.headers.location).replace('/installer/install', '/installer/approve')
  const b = await get(approve)
  expect('approve', b.statusCode, 302)
  lap('approve')
  // 3–6: the Redirect URL, which exchanges the code before it sends the browser on.
  const c = await get(String(b.headers.location), { cookie: cookieHeader(jar) })
  expect('callback', c.statusCode, 302)
  const instanceId = new URL(String(c.headers.location)).searchParams.get('instanceId')
  if (!instanceId) throw new FlowError('callback: no instanceId in the post-install redirect')
  lap('callback')
  // finish: the app's backend says setup is done → refresh, bi-event → Finished.
  const d = await request(`${target.url}/api/installations/${instanceId}/finish`, {
    method: 'POST', headers: { authorization: `Bearer ${target.adminToken}` }, dispatcher: agent,
  })
  const body = (await d.body.json()) as { state?: string }
  expect('finish', d.statusCode, 200)
  if (body.state !== 'Finished') throw new FlowError(`finish: state ${body.state}`)
  lap('finish')
  t.flow.push(performance.now() - started)
}

export const emptyTimings = (): FlowTimings => ({ hops: { appUrl: [], approve: [], callback: [], finish: [] }, flow: [], errors: 0, firstErrors: [] })

/**
 * Runs `total` flows, `concurrency` at a time, with a progress line: rewritten in place on a
 * terminal, one line every ~5 s otherwise.
 */
export async function runFlows(target: FlowTarget, total: number, concurrency: number, label: string, quiet = false) {
  const t = emptyTimings()
  let next = 0
  let done = 0
  const started = performance.now()
  const tty = process.stdout.isTTY
  const progress = (final = false) => {
    if (quiet) return
    const s = (performance.now() - started) / 1000
    const line = `${label}: ${done}/${total} flows, ${(done / s).toFixed(1)} flows/s, ${t.errors} errors`
    if (tty) process.stdout.write(`\r\x1b[K${line}${final ? '\n' : ''}`)
    else console.log(line)
  }
  const ticker = setInterval(progress, tty ? 250 : 5_000)
  const worker = async () => {
    while (next < total) {
      const n = next++
      try {
        await oneFlow(target, n, t)
      } catch (err) {
        t.errors++
        if (t.firstErrors.length < 5) t.firstErrors.push((err as Error).message)
      }
      done++
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker))
  clearInterval(ticker)
  const seconds = (performance.now() - started) / 1000
  progress(true)
  return { timings: t, seconds, flowsPerSecond: t.flow.length / seconds }
}
