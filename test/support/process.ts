import { spawn, type ChildProcess } from 'node:child_process'
import { request } from 'undici'
import { builtEntry } from './build.ts'

/**
 * A broken test's backstop, never a measure: on a loaded machine everything takes longer, and a
 * wait that holds returns at once, so no wait gives up sooner than this, whatever it asks.
 */
const BACKSTOP_MS = 60_000

/** Polls `check` until it holds; fails naming `what` after `timeoutMs` (at least a minute). */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = BACKSTOP_MS) {
  const deadline = Date.now() + Math.max(timeoutMs, BACKSTOP_MS)
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting until ${what}`)
}

/** Whether the service at `url` answers /healthz with 200 now; a refused or hung connection is a no (5 s). */
export async function isHealthy(url: string): Promise<boolean> {
  try {
    const res = await request(`${url}/healthz`, { headersTimeout: 5_000, bodyTimeout: 5_000 })
    await res.body.dump()
    return res.statusCode === 200
  } catch {
    return false
  }
}

/**
 * `src/server.ts` in a process of its own, as production runs it (bundled for the tests, see
 * scripts/test-build.mjs); resolves once it is healthy.
 */
export async function startServerProcess(t: { teardown(fn: () => unknown): void }, env: Record<string, string>, port: number) {
  const child: ChildProcess = spawn(process.execPath, [await builtEntry('src/server.ts')], {
    env: { ...process.env, LOG_LEVEL: 'warn', RATE_LIMIT_PER_MINUTE: '0', ...env, PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const url = `http://127.0.0.1:${port}`
  let gone: { code: number | null; signal: string | null } | undefined
  void exited.then((how) => (gone = how))
  // However long a loaded machine takes to start it: it answers, or exits (tap's timeout backstops).
  await waitUntil('the server answers', async () => {
    if (gone) throw new Error(`the server exited (${gone.signal ?? gone.code}) before it answered`)
    return isHealthy(url)
  }, Infinity)
  return { child, exited, url }
}
