import { execFileSync } from 'node:child_process'
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * A throwaway Postgres cluster of the chaos suite's own (initdb into a temporary folder, its own
 * port), so restarting it disturbs nothing else on the machine.
 */
export function throwawayCluster(port: number) {
  const version = readdirSync('/usr/lib/postgresql').sort().at(-1)
  if (!version) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql')
  const bin = (name: string) => `/usr/lib/postgresql/${version}/bin/${name}`
  const dir = mkdtempSync(join(tmpdir(), 'wie-chaos-pg-'))
  chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()))
  const data = join(dir, 'data')
  // As the postgres user: the server refuses to run as root.
  const asPostgres = (cmd: string, args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', bin(cmd), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    init() {
      asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'])
    },
    start() {
      asPostgres('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'postgres.log'), '-w', 'start'])
    },
    /** Like a crash: no checkpoint, connections cut. */
    stop() {
      asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
    },
    destroy() {
      try {
        asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export type Cluster = ReturnType<typeof throwawayCluster>
