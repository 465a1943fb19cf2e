import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'
import t from 'tap'

/**
 * The chaos suite, bounded for CI: concurrent installs on two server processes and a throwaway
 * Postgres, with SIGKILLs, a Postgres restart and a misbehaving Wix (`npm run test:chaos` runs
 * the full size).
 */

t.setTimeout(330_000)
const canRun = process.getuid?.() === 0 && existsSync('/usr/lib/postgresql')
t.test('chaos: kills, a Postgres restart, a flaky Wix — every check holds', { skip: canRun ? false : 'needs root and the PostgreSQL server binaries (initdb) to start a throwaway cluster' }, async (t) => {
  const run = promisify(execFile)
  const result = await run(process.execPath, ['--import', 'tsx', 'chaos/run.ts', '--installs', '80', '--concurrency', '24', '--seed', '11'], {
    timeout: 300_000,
  }).catch((err: { code: number; stdout: string; stderr: string }) => err)
  const out = result.stdout
  t.match(out, /installs lost while their browser waited: \d+/, 'the run counts the installs lost while their browser waited')
  t.equal((result as { code?: number }).code ?? 0, 0, 'the chaos run exits 0')
  // A failed check carries its detail in the assertion's name, so CI's list of failures says why.
  const passed = (check: string) => {
    const line = out.split('\n').find((l) => l.includes(` ${check}: `))
    t.ok(line?.includes(`PASS ${check}: `), line?.includes('FAIL') ? line.replace(/^\[chaos [\d:]+\] /, '') : `passed: ${check}`)
  }
  passed("the database agrees with Wix's own counts")
  passed('no server process died on its own')
  passed('no install lost while its browser waited')
  for (const check of [
    'the service answers 503 with Retry-After while Postgres is gone',
    'no code exchanged more than once',
    'no installation stuck without something scheduled to move it',
    'every stored history replays through the machine to its stored state',
    'no 5xx outside the database outage',
    'no secret in any log line',
  ]) passed(check)
  t.match(out, /[1-9]\d* SIGKILLs, 1 Postgres restart/, 'with processes killed and Postgres restarted')
  // Whether a browser asked during the few seconds of the outage depends on the load; the probes
  // above always do. A run where none did says so as a TODO rather than passing unexercised.
  const turnedAway = /5xx during the outage: [1-9]/.test(out)
  t.ok(turnedAway, 'with browsers turned away by 503s while Postgres was down',
    turnedAway ? {} : { todo: 'no browser happened to ask during the outage in this run' })
  t.match(out, /takeover of a killed instance's jobs: \d+ jobs, p50 (\d+|-) ms, max (\d+|-) ms/, 'takeover times are reported')
  if (!out.includes('all checks passed')) t.comment(out)
})
