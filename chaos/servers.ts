import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'

/** A process that ended without being told to: a crash the suite did not cause. */
export interface UnexpectedExit {
  port: number
  code: number | null
  signal: string | null
  at: number
}

/**
 * The service's processes: started, SIGKILLed and restarted on the same port, logs kept. Like a
 * process manager, it restarts a process that exits on its own, and remembers that it did.
 */
export function serverPool(opts: { ports: number[]; env: Record<string, string>; logFile: string; server: string }) {
  const log = createWriteStream(opts.logFile, { flags: 'a' })
  const children = new Map<number, ChildProcess>()
  const killedByUs = new WeakSet<ChildProcess>()
  const unexpected: UnexpectedExit[] = []
  let stopping = false

  function start(port: number) {
    const child = spawn(process.execPath, ['--import', './chaos/orphan-guard.mjs', opts.server], {
      env: { ...process.env, ...opts.env, PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}` },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    child.stdout!.pipe(log, { end: false })
    child.stderr!.pipe(log, { end: false })
    child.once('exit', (code, signal) => {
      if (stopping || killedByUs.has(child)) return
      unexpected.push({ port, code, signal, at: Date.now() })
      setTimeout(() => stopping || start(port), 500)
    })
    children.set(port, child)
    return child
  }

  const alive = (child: ChildProcess | undefined): child is ChildProcess =>
    child !== undefined && child.exitCode === null && child.signalCode === null

  return {
    urls: opts.ports.map((p) => `http://127.0.0.1:${p}`),
    unexpected,
    startAll: () => opts.ports.forEach(start),
    /** kill -9, then a restart after `downMs`; `onKilled` hears the pid as soon as it is dead. */
    async crash(port: number, downMs: number, onKilled?: (pid: number, at: number) => void) {
      const child = children.get(port)
      if (!alive(child)) return false
      killedByUs.add(child)
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGKILL')
      await exited
      onKilled?.(child.pid!, Date.now())
      await new Promise((r) => setTimeout(r, downMs))
      if (!stopping) start(port)
      return true
    },
    /** SIGTERM, as a deployment would: a graceful shutdown (SIGKILL after `graceMs`). */
    async stopAll(graceMs = 10_000) {
      stopping = true
      await Promise.all([...children.values()].filter(alive).map((child) => {
        const exited = new Promise((r) => child.once('exit', r))
        const force = setTimeout(() => child.kill('SIGKILL'), graceMs)
        child.kill('SIGTERM')
        return exited.finally(() => clearTimeout(force))
      }))
      log.end()
    },
    /** From an exit handler: nothing may outlive the suite. */
    killAll() {
      stopping = true
      for (const child of children.values()) if (alive(child)) child.kill('SIGKILL')
    },
  }
}
