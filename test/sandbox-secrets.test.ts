import { spawn } from 'node:child_process'
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../src/config.ts'
import { loadSandboxSecrets } from '../src/sandbox/secrets.ts'

/**
 * sandbox-secrets.json holds the sandbox's admin token and keys. With DATABASE_URL set no embedded
 * database checks DATA_DIR, yet the file is read all the same: it is checked and made private here.
 */

const posix = { skip: process.platform === 'win32' && 'POSIX modes only' }
const NOBODY = 65534

/** What another local user gets when reading `file`: its text, or the error code. */
function readAsNobody(file: string): Promise<string> {
  // Without the NODE_OPTIONS the test runner injects into every child: it writes files as this user.
  const read = `require('node:fs').readFileSync(${JSON.stringify(file)}, 'utf8')`
  const code = `try { process.stdout.write(${read}) } catch (e) { process.stdout.write(e.code) }`
  const bare = 'unset NODE_OPTIONS; exec "$0" -e "$1"'
  const child = spawn('/bin/sh', ['-c', bare, process.execPath, code], { uid: NOBODY, cwd: '/' })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  return new Promise((resolve) => child.on('close', () => resolve(out)))
}

t.test('a world-readable secrets file is made private with DATABASE_URL set too', posix, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'sandbox-secrets-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const file = join(dataDir, 'sandbox-secrets.json')
  const first = loadSandboxSecrets(dataDir)
  // A copy, a restore or a careless chmod opened it to everyone.
  await chmod(dataDir, 0o755)
  await chmod(file, 0o644)

  const warnings: object[] = []
  const env = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres', DATA_DIR: dataDir }
  const config = loadConfig(env, () => loadSandboxSecrets(dataDir, (found) => warnings.push(found)))
  t.ok(config.sandbox, 'the service runs in sandbox mode, on a real Postgres')
  t.equal(config.adminToken, first.adminToken, 'with the secrets it kept')
  t.equal((await stat(file)).mode & 0o777, 0o600, 'the file is this user\'s alone again')
  t.equal((await stat(dataDir)).mode & 0o777, 0o700, 'and so is DATA_DIR')
  t.match(warnings, [{ path: dataDir, mode: '755' }, { path: file, mode: '644' }], 'with a warning naming each path and the mode it had')

  const again: object[] = []
  loadSandboxSecrets(dataDir, (found) => again.push(found))
  t.same(again, [], 'once private, the next start says nothing')
})

t.test('another local user cannot read the secrets', {
  skip: (process.platform === 'win32' || process.getuid?.() !== 0) && 'needs root to read as another user',
}, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'sandbox-secrets-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const { adminToken } = loadSandboxSecrets(dataDir)
  await chmod(dataDir, 0o755)
  await chmod(join(dataDir, 'sandbox-secrets.json'), 0o644)
  t.match(await readAsNobody(join(dataDir, 'sandbox-secrets.json')), adminToken, 'the control: opened up, anyone reads the admin token')
  const env = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres', DATA_DIR: dataDir }
  loadConfig(env, () => loadSandboxSecrets(dataDir, () => {}))
  t.equal(await readAsNobody(join(dataDir, 'sandbox-secrets.json')), 'EACCES', 'after a start with DATABASE_URL, another user is refused')
})
