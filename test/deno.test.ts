import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { serverUrl } from './support/database.ts'

/** The same source under Deno 2: one complete install end to end, on the real Postgres. */

const root = fileURLToPath(new URL('..', import.meta.url))
const deno = fileURLToPath(new URL('../node_modules/.bin/deno', import.meta.url))
const url = serverUrl()

// Deno's first run compiles and caches every module it loads.
t.setTimeout(180_000)

t.test('an install runs end to end under Deno', { skip: !url && 'needs a real Postgres: set TEST_DATABASE_URL (CI does)' }, async (t) => {
  const child = spawn(deno, ['run', '-A', '--node-modules-dir=manual', 'test/deno/flow.ts'], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: url!, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  t.equal(code, 0, `deno exits 0; it printed:\n${output}`)
  t.match(output, /^ok \(deno 2\./m, 'and reports the flow ok, on Deno 2')
})
