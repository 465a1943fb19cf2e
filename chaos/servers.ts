import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'

/** The service's processes: started, SIGKILLed and restarted on the same port, logs kept. */
export function serverPool(opts: { ports: number[]; env: Record<string, string>; logFile: string }) {
  const log = createWriteStream(opts.logFile, { flags: 'a' })
  const children = new Map<number, ChildProcess>()

  function start(port: number) {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: { ...process.env, ...opts.env, PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child.stdout!.pipe(log, { end: false })
    child.stderr!.pipe(log, { end: false })
    children.set(port, child)
    return child
  }

  return {
    urls: opts.ports.map((p) => `http://127.0.0.1:${p}`),
    startAll: () => opts.ports.forEach(start),
    /** kill -9, then a restart after `downMs`. */
    async crash(port: number, downMs: number) {
      const child = children.get(port)
      if (!child || child.exitCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGKILL')
      await exited
      await new Promise((r) => setTimeout(r, downMs))
      start(port)
    },
    async stopAll() {
      await Promise.all([...children.values()].map((child) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        return exited
      }))
      log.end()
    },
  }
}
