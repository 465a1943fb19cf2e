import { createHash, randomBytes } from 'node:crypto'
import { createServer, connect as netConnect, type AddressInfo, type Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import postgres, { type Sql } from 'postgres'
import { connect } from '../../src/db/connect.ts'
import { startEmbeddedPostgres } from '../../src/db/embedded.ts'
import { ENGINE_MIGRATIONS, INSTALLATION_MIGRATIONS, loadMigrations, migrate } from '../../src/db/migrate.ts'

/**
 * The Postgres server tests run on: TEST_DATABASE_URL, else DATABASE_URL, else none — and then
 * every test file runs on an embedded PGlite of its own, so `npm test` needs no service at all.
 */
export const serverUrl = (): string | undefined => process.env.TEST_DATABASE_URL || process.env.DATABASE_URL || undefined

/** What a proxied connection is wired with: its client, the upstream connection made for it. */
export type Wire = (client: Socket, upstream: Socket) => void

/** Both ways, and an error on either side ends the other. */
const pipeBoth: Wire = (client, upstream) => {
  client.pipe(upstream).pipe(client)
  client.on('error', () => upstream.destroy())
  upstream.on('error', () => client.destroy())
}

/**
 * A loopback TCP proxy in front of a database: each client gets an upstream connection of its own
 * (`connectUpstream`), wired by `wire`. `url` is `dbUrl` pointed at it. The tests' fault
 * injectors (a gate, a restart cut at one statement, a slow connect) are wirings of it.
 */
export async function postgresProxy(dbUrl: string, connectUpstream: () => Socket, wire: Wire = pipeBoth) {
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connectUpstream()
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
    }
    wire(client, upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const url = new URL(dbUrl)
  url.host = `127.0.0.1:${port}`
  return {
    url: url.toString(),
    /** New connections are refused from now on (a server that is down); open ones stay. */
    refuse: () => void server.close(),
    /** Accepts again, on the same port; resolves once it listens. */
    accept: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
    /** Every connection made through it, cut. */
    cut: () => sockets.forEach((s) => s.destroy()),
    /** Closed, with every connection made through it cut. */
    destroy: () => {
      server.close()
      sockets.forEach((s) => s.destroy())
    },
  }
}

/** The TCP address of a server database URL. */
export const upstreamOf = (dbUrl: string) => {
  const target = new URL(dbUrl)
  return () => netConnect(Number(target.port || 5432), target.hostname)
}

/**
 * A TCP gate in front of the database at `dbUrl`: while open it forwards, closed it refuses new
 * connections (a server that is down) and the connections already made stay up. `url` reaches
 * the database through it.
 */
export async function databaseGate(dbUrl: string) {
  const proxy = await postgresProxy(dbUrl, upstreamOf(dbUrl))
  return { url: proxy.url, close: proxy.refuse, open: proxy.accept, destroy: proxy.destroy }
}

/** A loopback port forwarding to the embedded database's Unix socket, which no URL can name. */
async function loopbackBridge(socket: string) {
  const proxy = await postgresProxy('postgres://postgres@127.0.0.1/postgres', () => netConnect(socket))
  return { url: proxy.url, close: proxy.destroy }
}

/** True when tests run on embedded PGlite: one session, reached by one connection. */
export const onEmbedded = () => serverUrl() === undefined

/** The `skip` reason for a test that needs what only a real server has, or false on one. */
export const needsRealPostgres = (why: string): string | false =>
  onEmbedded() && `needs a real Postgres server (${why}); set TEST_DATABASE_URL to run it`

export interface TestDatabase {
  url: string
  sql: Sql
  drop(): Promise<void>
}

/** A fresh, migrated database of its own for one test file; dropped by `drop()`. */
export async function freshDatabase(): Promise<TestDatabase> {
  const server = serverUrl()
  return server ? freshServerDatabase(server) : freshEmbeddedDatabase()
}

/** Named after the migrations, so a changed schema gets a new template. */
async function schemaHash() {
  const hash = createHash('sha256')
  for (const set of [ENGINE_MIGRATIONS, INSTALLATION_MIGRATIONS]) {
    for (const m of await loadMigrations(set)) hash.update(set.schema).update(m.name).update(m.sql)
  }
  return hash.digest('hex').slice(0, 12)
}

// ---- a real server: databases cloned from a migrated template database -------------------------

const withDatabase = (url: string, name: string) => {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

/** Builds the migrated template once per schema; test files clone it in milliseconds. */
export async function ensureTemplate(server = serverUrl()!): Promise<string> {
  const name = `wie_template_${await schemaHash()}`
  const admin = postgres(server, { max: 1, onnotice: () => {} })
  try {
    await admin`select pg_advisory_lock(7406151002)`
    const [exists] = await admin`select 1 from pg_database where datname = ${name}`
    if (!exists) {
      await admin.unsafe(`create database ${name}`)
      const sql = connect(withDatabase(server, name), { max: 1 })
      await migrate(sql)
      await sql.end()
      await admin.unsafe(`alter database ${name} with is_template true`)
    }
    await admin`select pg_advisory_unlock(7406151002)`
  } finally {
    await admin.end()
  }
  return name
}

async function freshServerDatabase(server: string): Promise<TestDatabase> {
  const template = await ensureTemplate(server)
  const name = `wie_test_${randomBytes(6).toString('hex')}`
  const admin = postgres(server, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database ${name} template ${template}`)
  const url = withDatabase(server, name)
  const sql = connect(url, { max: 10 })
  return {
    url,
    sql,
    async drop() {
      await sql.end({ timeout: 1 })
      await admin.unsafe(`drop database if exists ${name} with (force)`)
      await admin.end()
    },
  }
}

// ---- embedded: PGlite on a copy of a migrated template data dir ---------------------------------

const CACHE_DIR = fileURLToPath(new URL('../../node_modules/.cache/wix-install-engine/', import.meta.url))

/**
 * initdb in WASM takes seconds and writes ~40 MB, so the migrated data dir is built once per
 * schema and copied per test file. Test files run in parallel processes: the first one to get the
 * lock builds it into a scratch dir and renames it into place; the others wait for it.
 */
export async function ensureEmbeddedTemplate(): Promise<string> {
  const dir = join(CACHE_DIR, `pglite-template-${await schemaHash()}`)
  if (await exists(join(dir, 'pglite', 'PG_VERSION'))) return dir
  return withLock(`${dir}.lock`, async () => {
    if (await exists(join(dir, 'pglite', 'PG_VERSION'))) return dir
    // Only the lock holder builds, so one scratch name will do; a dead builder's leftover goes.
    const scratch = `${dir}.build`
    await rm(scratch, { recursive: true, force: true })
    const pg = await startEmbeddedPostgres({ dataDir: scratch })
    try {
      const sql = pg.connect()
      await migrate(sql)
      await sql.end()
    } finally {
      // A clean shutdown, so every copy starts without WAL recovery.
      await pg.close()
    }
    await rename(scratch, dir)
    return dir
  })
}

/**
 * The template as a tarball PGlite loads into memory (`loadDataDir`), made once from a copy of
 * it: a test file's database then costs no copy of ~800 files, no file system calls while it runs
 * and nothing to delete (about half a second of CPU less a file). The PGlite version is in its name.
 */
async function ensureEmbeddedDump(): Promise<string> {
  const template = await ensureEmbeddedTemplate()
  const dump = `${template}-pglite-${pgliteVersion()}.tar`
  if (await exists(dump)) return dump
  return withLock(`${dump}.lock`, async () => {
    if (await exists(dump)) return dump
    const scratch = `${dump}.build`
    await rm(scratch, { recursive: true, force: true })
    await cp(template, scratch, { recursive: true })
    const pg = await PGlite.create({ dataDir: join(scratch, 'pglite') })
    const tar = Buffer.from(await (await pg.dumpDataDir('none')).arrayBuffer())
    await pg.close()
    await writeFile(`${dump}.tmp`, tar)
    await rename(`${dump}.tmp`, dump)
    await rm(scratch, { recursive: true, force: true })
    return dump
  })
}

const pgliteVersion = () =>
  (JSON.parse(readFileSync(fileURLToPath(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url)), 'utf8')) as { version: string }).version

/** Runs `fn` holding `lock` (a file naming this process), waiting for a live holder to finish. */
async function withLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(CACHE_DIR, { recursive: true })
  const deadline = Date.now() + 120_000
  while (!(await tryLock(lock))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  try {
    return await fn()
  } finally {
    await rm(lock, { force: true })
  }
}

/** Creates `lock` naming this process; takes over one left by a dead process. */
async function tryLock(lock: string): Promise<boolean> {
  try {
    await writeFile(lock, `${process.pid}\n`, { flag: 'wx' })
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  const pid = Number.parseInt(await readFile(lock, 'utf8').catch(() => ''), 10)
  if (pid > 0 && !isAlive(pid)) await rm(lock, { force: true })
  return false
}

function isAlive(pid: number) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

/**
 * Makes `dataDir` an embedded DATA_DIR holding a migrated database, as a start would leave it, in
 * a copy instead of the seconds of initdb a first start takes (the files about a first start run it).
 */
export async function seedDataDir(dataDir: string) {
  await cp(await ensureEmbeddedTemplate(), dataDir, { recursive: true })
}

/**
 * PGlite in memory, loaded from the migrated template's tarball, served on a Unix socket as the
 * embedded database is (src/db/embedded.ts, whose own files test how it keeps a DATA_DIR).
 */
async function freshEmbeddedDatabase(): Promise<TestDatabase> {
  const tar = await readFile(await ensureEmbeddedDump())
  const pg = await PGlite.create({ loadDataDir: new Blob([tar]) })
  const socketDir = await mkdtemp(join(tmpdir(), 'wie-test-'))
  // As src/db/embedded.ts serves it: a few spare slots for postgres.js's reconnects (see there).
  const server = new PGLiteSocketServer({ db: pg, path: join(socketDir, '.s.PGSQL.5432'), maxConnections: 4 })
  await server.start()
  // PGlite is one session: exactly one connection, shared by everything in this test file.
  const sql = connect('postgres://postgres@localhost/postgres', { max: 1, path: join(socketDir, '.s.PGSQL.5432') })
  // Tests hand a URL to their own clients and child processes: a loopback port, in tests only.
  const bridge = await loopbackBridge(join(socketDir, '.s.PGSQL.5432'))
  let dropping: Promise<void> | undefined
  return {
    url: bridge.url,
    sql,
    drop: () =>
      (dropping ??= (async () => {
        await sql.end({ timeout: 1 })
        bridge.close()
        await server.stop()
        await pg.close()
        await rm(socketDir, { recursive: true, force: true })
      })()),
  }
}

async function exists(path: string) {
  return stat(path).then(
    () => true,
    () => false,
  )
}
