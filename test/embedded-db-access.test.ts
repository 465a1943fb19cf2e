import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startEmbeddedPostgres } from '../src/db/embedded.ts'
import { seedDataDir } from './support/database.ts'

/**
 * The embedded database takes any user name and password: the attack is simply to connect.
 * Another local user (or a sidecar on the pod's loopback) must find no way in.
 */

// Each data dir is a copy of a migrated one (what is tested is how it is reached, not how it is made).
t.setTimeout(180_000)

const linux = process.platform === 'linux'
const NOBODY = 65534

/** Loopback TCP ports this process listens on (its sockets' inodes, found in /proc/net/tcp*). */
async function listeningPorts(): Promise<number[]> {
  const inodes = new Set<string>()
  for (const fd of await readdir('/proc/self/fd')) {
    const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/self/fd/${fd}`).catch(() => ''))
    if (m) inodes.add(m[1])
  }
  const ports: number[] = []
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (await readFile(table, 'utf8').catch(() => '')).split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      // Column 3 is the state (0A: LISTEN), column 9 the socket's inode.
      if (f[3] === '0A' && inodes.has(f[9])) ports.push(Number.parseInt(f[1].split(':')[1], 16))
    }
  }
  return ports
}

/**
 * Connects to `target` as another user and sends a Postgres startup message with made-up
 * credentials; prints `in` when the server answers AuthenticationOk, else what stopped it.
 */
function probe(target: { port: number } | { path: string }, uid?: number): Promise<string> {
  const code = `
    const socket = require('node:net').connect(${JSON.stringify(target)})
    const params = Buffer.from('user\\0mallory\\0database\\0postgres\\0password\\0guess\\0\\0')
    const head = Buffer.alloc(8); head.writeInt32BE(8 + params.length, 0); head.writeInt32BE(196608, 4)
    socket.on('connect', () => socket.write(Buffer.concat([head, params])))
    socket.on('data', (d) => { console.log(d[0] === 0x52 && d.readInt32BE(5) === 0 ? 'in' : 'refused'); process.exit(0) })
    socket.on('error', (e) => { console.log(e.code); process.exit(0) })
    socket.on('close', () => { console.log('closed'); process.exit(0) })`
  // Without the NODE_OPTIONS the test runner injects into every child: it writes files as this user.
  const bare = 'unset NODE_OPTIONS; exec "$0" -e "$1"'
  const child = spawn('/bin/sh', ['-c', bare, process.execPath, code], { uid, cwd: '/' })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  return new Promise((resolve) => child.on('close', () => resolve(out.trim())))
}

t.test('the embedded database opens no TCP port', { skip: !linux && 'reads /proc' }, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'embedded-access-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  await seedDataDir(dataDir)
  const before = new Set(await listeningPorts())
  const pg = await startEmbeddedPostgres({ dataDir })
  t.teardown(() => pg.close())
  const opened = (await listeningPorts()).filter((p) => !before.has(p))
  const answers = await Promise.all(opened.map((port) => probe({ port })))
  t.same(opened, [], 'starting it listens on no new TCP port')
  t.notOk(answers.includes('in'), 'and no port of ours lets a stranger with made-up credentials in')
  const sql = pg.connect()
  t.same(await sql`select 1 as ok`, [{ ok: 1 }], 'while this process reaches it on its socket')
})

t.test('another local user cannot connect to its socket', {
  skip: (!linux || process.getuid?.() !== 0) && 'needs root to run a client as another user',
}, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'embedded-access-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  await seedDataDir(dataDir)
  const pg = await startEmbeddedPostgres({ dataDir })
  t.teardown(() => pg.close())
  t.equal(await probe({ path: pg.socket }), 'in', 'this user (the control) gets in with any credentials')
  t.equal(await probe({ path: pg.socket }, NOBODY), 'EACCES', 'another user is refused by the directory, before any protocol')
})
