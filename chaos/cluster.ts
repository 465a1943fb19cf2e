import { execFile, execFileSync } from 'node:child_process'
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * A throwaway Postgres cluster of the chaos suite's own (initdb into a temporary folder, its own
 * port), so restarting it disturbs nothing else on the machine. Start and stop are asynchronous:
 * the browsers keep knocking while Postgres is away, which is the point of the outage.
 */
export function throwawayCluster(port: number) {
  const version = readdirSync('/usr/lib/postgresql').sort().at(-1)
  if (!version) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql')
  const bin = (name: string) => `/usr/lib/postgresql/${version}/bin/${name}`
  const dir = mkdtempSync(join(tmpdir(), 'wie-chaos-pg-'))
  chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()))
  const data = join(dir, 'data')
  // As the postgres user: the server refuses to run as root.
  const asPostgres = (cmd: string, args: string[]) => ['runuser', ['-u', 'postgres', '--', bin(cmd), ...args]] as const
  const sync = (cmd: string, args: string[]) => execFileSync(...asPostgres(cmd, args), { stdio: ['ignore', 'pipe', 'pipe'] })
  const async = (cmd: string, args: string[]) => run(...asPostgres(cmd, args))
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`
  let destroyed = false

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    /** What a watchdog needs to stop and remove this cluster if the suite itself is killed. */
    reap: { pgCtl: bin('pg_ctl'), data, dir },
    init() {
      sync('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'])
    },
    async start() {
      await async('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'postgres.log'), '-w', 'start'])
    },
    /** Like a crash: no checkpoint, every connection cut. */
    async stop() {
      await async('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
    },
    /** Synchronous, so it also runs from an exit handler. Idempotent. */
    destroy() {
      if (destroyed) return
      destroyed = true
      try {
        sync('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
      } catch {
        // never started, or already stopped
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export type Cluster = ReturnType<typeof throwawayCluster>
