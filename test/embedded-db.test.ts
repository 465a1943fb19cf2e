import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { DataDirLockedError, startEmbeddedPostgres, type EmbeddedPostgres } from '../src/db/embedded.ts'
import { builtEntry } from './support/build.ts'
import { seedDataDir } from './support/database.ts'

// A fresh data directory runs initdb in WASM (seconds), so this file gets a longer budget. Only the
// first test starts on an empty one; the others on a copy of a migrated one (seeded).
t.setTimeout(180_000)

const root = fileURLToPath(new URL('..', import.meta.url))
// The other processes run src/db/embedded.ts bundled for the tests (scripts/test-build.mjs): plain `node`.
const moduleUrl = pathToFileURL(await builtEntry('src/db/embedded.ts')).href

async function tempDir(t: Test, { seeded = true } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'embedded-db-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  if (seeded) await seedDataDir(dir)
  return dir
}

async function start(t: Test, dataDir: string) {
  const pg = await startEmbeddedPostgres({ dataDir })
  t.teardown(() => pg.close())
  return pg
}

/** A client of its own on the database's Unix socket (the only way in). */
function client(t: Test, pg: EmbeddedPostgres, opts: postgres.Options<Record<string, postgres.PostgresType>> = {}) {
  const sql = postgres({ path: pg.socket, user: 'postgres', database: 'postgres', max: 1, onnotice: () => {}, ...opts })
  t.teardown(() => sql.end({ timeout: 1 }))
  return sql
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms}ms`)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

/** Runs `body` in a separate Node process with `startEmbeddedPostgres` and `postgres` in scope. */
function child(body: string) {
  const code = `const { startEmbeddedPostgres } = await import(${JSON.stringify(moduleUrl)})
    const { default: postgres } = await import('postgres')
    ${body}`
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: root })
  let out = ''
  proc.stdout!.on('data', d => (out += d))
  proc.stderr!.on('data', d => (out += d))
  const exited = new Promise<number | null>(r => proc.on('exit', c => r(c)))
  const line = (re: RegExp) =>
    within(
      60_000,
      new Promise<string>((resolve, reject) => {
        const check = () => (re.test(out) ? resolve(out) : undefined)
        proc.stdout!.on('data', check)
        proc.on('exit', () => (re.test(out) ? resolve(out) : reject(new Error(`child exited: ${out}`))))
        check()
      }),
      'child process',
    )
  return { proc, exited, line }
}

async function deadPid() {
  const p = spawn(process.execPath, ['-e', ''])
  await new Promise(r => p.on('exit', r))
  return p.pid!
}

t.test('the database survives a restart on the same data dir', async t => {
  const dataDir = await tempDir(t, { seeded: false })
  const first = await startEmbeddedPostgres({ dataDir })
  t.equal(first.socket, join(dataDir, '.s.PGSQL.5432'), 'it is served on a Unix socket inside DATA_DIR')
  const sql = first.connect()
  await sql`create table notes (id int primary key, body text not null)`
  await sql`insert into notes values (1, 'kept')`
  await sql.end()
  await first.close()
  await first.close()
  t.pass('closing twice is harmless')
  await t.rejects(stat(join(dataDir, 'LOCK')), { code: 'ENOENT' }, 'close removes the lock file')

  const second = await start(t, dataDir)
  const again = client(t, second)
  const rows = await again`select body from notes where id = 1`
  t.same(rows, [{ body: 'kept' }], 'the row written before the restart is read back after it')
})

t.test('one data dir serves one process at a time', async t => {
  const dataDir = await tempDir(t)

  t.test('a second start in the same process is refused', async t => {
    const pg = await startEmbeddedPostgres({ dataDir })
    const err = await startEmbeddedPostgres({ dataDir }).catch(e => e)
    t.ok(err instanceof DataDirLockedError, 'the second start fails with DataDirLockedError')
    t.equal(err.code, 'DATA_DIR_LOCKED', 'the error carries the DATA_DIR_LOCKED code')
    t.equal(
      err.message,
      `DATA_DIR ${dataDir} is in use by another process (pid ${process.pid}); stop it or choose another DATA_DIR`,
      'the message is one line naming the directory and the pid',
    )
    const sql = client(t, pg)
    t.same(await sql`select 1 as ok`, [{ ok: 1 }], 'the running instance keeps working after the refused start')
    await sql.end()
    await pg.close()
    const next = await startEmbeddedPostgres({ dataDir })
    t.pass('once closed, the data dir can be opened again')
    await next.close()
  })

  t.test('another process holding it blocks us, and is taken over after kill -9', async t => {
    const holder = child(`
      const pg = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} })
      const sql = pg.connect()
      await sql\`create table if not exists crash (id int primary key)\`
      await sql\`insert into crash values (7)\`
      console.log('ready')
      setInterval(() => {}, 1000)`)
    t.teardown(() => void holder.proc.kill('SIGKILL'))
    await holder.line(/ready/)

    const err = await startEmbeddedPostgres({ dataDir }).catch(e => e)
    t.equal(err.code, 'DATA_DIR_LOCKED', 'this process is refused while the other one runs')
    t.equal(err.pid, holder.proc.pid, 'the error names the pid of the process holding the dir')

    const rival = child(`
      await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} })
        .then(() => console.log('started'), e => console.log('refused', e.code))
      process.exit(0)`)
    const said = await rival.line(/started|refused/)
    t.match(said, /refused DATA_DIR_LOCKED/, 'a third process is refused with DATA_DIR_LOCKED too')

    holder.proc.kill('SIGKILL')
    await holder.exited
    const lock = await readFile(join(dataDir, 'LOCK'), 'utf8')
    t.equal(Number(lock), holder.proc.pid, 'kill -9 leaves the dead process in the lock file')

    const pg = await start(t, dataDir)
    const sql = client(t, pg)
    t.same(await sql`select id from crash`, [{ id: 7 }], 'the next start takes over and sees the committed row')
  })
})

t.test('a stale lock is taken over', async t => {
  const dataDir = await tempDir(t)
  const lockFile = join(dataDir, 'LOCK')

  await writeFile(lockFile, `${await deadPid()}\n`)
  const pg = await startEmbeddedPostgres({ dataDir })
  t.equal(Number(await readFile(lockFile, 'utf8')), process.pid, 'a lock naming a dead pid is replaced by ours')
  await pg.close()

  // After a container restart the new process often has the same pid as the one that died.
  await writeFile(lockFile, `${process.pid}\n`)
  const again = await startEmbeddedPostgres({ dataDir })
  t.pass('a leftover lock naming our own pid, not held in this process, is taken over')
  await again.close()
})

t.test('Postgres features through pglite-socket with one postgres.js connection', async t => {
  const dataDir = await tempDir(t)
  const pg = await start(t, dataDir)
  const sql = client(t, pg)
  await sql`create table jobs (id int primary key, data jsonb, tags text[], at timestamptz, claimed bool default false)`

  t.test('sql.begin commits, and rolls back when the callback throws', async t => {
    await sql.begin(async tx => tx`insert into jobs (id) values (1)`)
    const err = await sql
      .begin(async tx => {
        await tx`insert into jobs (id) values (2)`
        throw new Error('abort')
      })
      .catch(e => e)
    t.equal(err.message, 'abort', 'the callback error reaches the caller')
    const ids = await sql`select id from jobs order by id`
    t.same(ids, [{ id: 1 }], 'the committed insert stays and the aborted one is gone')
    const failed = await sql.begin(async tx => tx`select 1 / 0`).catch(e => e)
    t.equal(failed.code, '22012', 'a SQL error inside a transaction surfaces with its Postgres code')
    t.same(await sql`select 1 as ok`, [{ ok: 1 }], 'the connection is usable after a failed transaction')
  })

  t.test('jsonb parameters', async t => {
    const [a] = await sql`update jobs set data = ${sql.json({ a: 1, n: [1, 2] })} where id = 1 returning data`
    t.same(a.data, { a: 1, n: [1, 2] }, 'sql.json stores an object and reads it back as one')
    const text = JSON.stringify({ b: 2 })
    const [b] = await sql`select ${text}::jsonb as v, jsonb_typeof(${text}::jsonb) as kind`
    // postgres.js infers a jsonb parameter and JSON-encodes the string again: same on a real server.
    t.equal(b.kind, 'string', 'a JSON string cast with ::jsonb is stored as a jsonb string, not an object')
    const [c] = await sql`select ${text}::text::jsonb as v`
    t.same(c.v, { b: 2 }, 'a JSON string cast through ::text::jsonb becomes an object')
  })

  t.test('arrays', async t => {
    const [row] = await sql`update jobs set tags = ${['a', 'b']}::text[] where id = 1 returning tags`
    t.same(row.tags, ['a', 'b'], 'a text[] parameter round-trips as a JS array')
    const hit = await sql`select id from jobs where id = any(${[1, 5]}::int[]) and 'b' = any(tags)`
    t.same(hit, [{ id: 1 }], '= any() matches against array parameters and columns')
  })

  t.test('timestamptz', async t => {
    const at = new Date('2024-02-29T23:59:58.123Z')
    const [row] = await sql`update jobs set at = ${at} where id = 1 returning at`
    t.ok(row.at instanceof Date, 'a timestamptz column reads back as a Date')
    t.equal(row.at.toISOString(), at.toISOString(), 'the instant survives the round trip to the millisecond')
  })

  t.test('claiming work: skip locked, advisory locks, data-modifying CTEs, jsonb_to_recordset', async t => {
    await sql`insert into jobs (id, data)
      select id, data from jsonb_to_recordset(${sql.json([{ id: 10, data: { k: 1 } }, { id: 11, data: { k: 2 } }])})
        as r(id int, data jsonb)`
    const made = await sql`select id, data from jobs where id >= 10 order by id`
    t.same(made, [{ id: 10, data: { k: 1 } }, { id: 11, data: { k: 2 } }], 'jsonb_to_recordset turns a JSON array into rows')

    const claimed = await sql`
      with c as (select id from jobs where not claimed and id >= 10 order by id for update skip locked limit 1)
      update jobs set claimed = true from c where jobs.id = c.id returning jobs.id`
    t.same(claimed, [{ id: 10 }], 'for update skip locked claims the first unclaimed job')

    const locks = await sql.begin(async tx => {
      await tx`select pg_advisory_xact_lock(42)`
      return tx`select count(*)::int as n from pg_locks where locktype = 'advisory' and objid = 42`
    })
    t.same(locks, [{ n: 1 }], 'pg_advisory_xact_lock holds its lock inside the transaction')
    const after = await sql`select count(*)::int as n from pg_locks where locktype = 'advisory' and objid = 42`
    t.same(after, [{ n: 0 }], 'the advisory lock is released at commit')

    const moved = await sql`
      with u as (update jobs set claimed = true where id = 11 returning id, data)
      insert into jobs (id, data) select id + 100, data from u returning id, data`
    t.same(moved, [{ id: 111, data: { k: 2 } }], 'a data-modifying CTE feeds its returned rows to the insert')
    const [src] = await sql`select claimed from jobs where id = 11`
    t.equal(src.claimed, true, 'the CTE update itself took effect')
  })

  t.test('prepared statements work, so prepare: false is not needed', async t => {
    for (let i = 0; i < 3; i++) await sql`select ${i}::int as i`
    const [p] = await sql`select count(*)::int as n from pg_prepared_statements`
    t.ok(p.n > 0, 'postgres.js prepares named statements on the PGlite session')
    const other = client(t, pg)
    t.same(await other`select ${5}::int as i`, [{ i: 5 }], 'a new connection reusing the same query text does not collide')
    await other.end()
  })

  t.test('a reconnecting client keeps working', async t => {
    const short = client(t, pg, { max_lifetime: 0.2 })
    const seen: number[] = []
    for (let i = 0; i < 4; i++) {
      seen.push((await within(5000, short`select ${i}::int as i`, 'query after reconnect'))[0].i)
      await sleep(150)
    }
    t.same(seen, [0, 1, 2, 3], 'queries succeed across max_lifetime reconnects')
  })

  t.test('a second connection is queued behind an open transaction', async t => {
    const other = client(t, pg)
    let answered = false
    let pending: Promise<unknown> | undefined
    await sql.begin(async tx => {
      await tx`insert into jobs (id) values (50)`
      pending = other`select count(*)::int as n from jobs where id = 50`.then(r => ((answered = true), r))
      await sleep(300)
      t.equal(answered, false, 'the other connection gets no answer while the transaction is open')
    })
    t.same(await pending, [{ n: 1 }], 'it is answered after the commit and sees the committed row')
  })

  t.test('LISTEN/NOTIFY does not cross connections', async t => {
    const got: string[] = []
    await within(5000, sql.listen('wake', p => void got.push(p)), 'sql.listen')
    await sql.notify('wake', 'hello')
    await sleep(300)
    // PGlite is one session: the notification returns on the notifying connection, not the listener's.
    t.same(got, [], 'a notification is not delivered to a sql.listen subscriber; wake-ups must be in-process')
  })
})
