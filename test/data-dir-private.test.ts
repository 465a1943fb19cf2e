import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startEmbeddedPostgres } from '../src/db/embedded.ts'

/** The embedded database's directory is this user's alone: 0700 directories, 0600 files. */

// A fresh data dir runs initdb in WASM (seconds).
t.setTimeout(180_000)

/** Every path under `dir` (itself included) whose mode lets group or others in. */
async function wider(dir: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (path: string) => {
    const s = await stat(path)
    if ((s.mode & 0o077) !== 0) out.push(`${path} ${(s.mode & 0o777).toString(8)}`)
    if (s.isDirectory()) for (const e of await readdir(path)) await walk(join(path, e))
  }
  await walk(dir)
  return out
}

const posix = { skip: process.platform === 'win32' && 'POSIX modes only' }

t.test('a new DATA_DIR is private, and stays so after writes and a restart', posix, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'data-dir-private-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const dataDir = join(root, 'data')
  const warnings: object[] = []
  const log = { info() {}, warn: (obj: object) => warnings.push(obj) }

  const pg = await startEmbeddedPostgres({ dataDir, log })
  const sql = pg.connect()
  await sql`create table private_test (a int)`
  await sql`insert into private_test select generate_series(1, 10000)`
  await sql.end()
  t.equal((await stat(dataDir)).mode & 0o777, 0o700, 'DATA_DIR itself is 0700 while the database runs')
  await pg.close()

  t.same(await wider(dataDir), [], 'after a run with writes, no file or directory is open to others')
  t.same(warnings, [], 'a directory we made ourselves needs no warning')

  // Someone loosened it (a copy, a restore, a careless chmod): the next start says so and fixes it.
  await chmod(dataDir, 0o755)
  await writeFile(join(dataDir, 'notes.txt'), 'x', { mode: 0o644 })
  await chmod(join(dataDir, 'notes.txt'), 0o644)
  await chmod(join(dataDir, 'pglite', 'PG_VERSION'), 0o666)
  const again = await startEmbeddedPostgres({ dataDir, log })
  await again.close()
  t.same(await wider(dataDir), [], 'the next start makes everything private again')
  t.match(warnings, [
    { path: dataDir, mode: '755' },
    { path: join(dataDir, 'notes.txt'), mode: '644' },
  ], 'with a warning naming each path others could read')
})

t.test('a DATA_DIR in a new directory is made private too', posix, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'data-dir-private-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const dataDir = join(root, 'a', 'b')
  await mkdir(join(root, 'a'))
  const pg = await startEmbeddedPostgres({ dataDir })
  await pg.close()
  t.equal((await stat(dataDir)).mode & 0o777, 0o700, 'the directory is 0700')
  t.same(await wider(dataDir), [], 'and everything in it is private')
})
