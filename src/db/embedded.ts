import { randomBytes } from 'node:crypto'
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import type { Sql } from 'postgres'
import { connect, type ConnectOptions } from './connect.ts'

export interface EmbeddedPostgres {
  /** The Unix socket it is served on: a file inside the 0700 DATA_DIR, so only this user reaches it. */
  socket: string
  /** A client of this database (one connection by default: PGlite is one session). */
  connect(opts?: ConnectOptions): Sql
  close(): Promise<void>
}

export interface EmbeddedOptions {
  dataDir: string
  log?: { info(obj: object, msg?: string): void; warn?(obj: object, msg?: string): void }
}

/** Two PGlite instances writing one directory corrupt it; the second one must refuse to start. */
export class DataDirLockedError extends Error {
  code = 'DATA_DIR_LOCKED'
  constructor(
    readonly dataDir: string,
    readonly pid?: number,
  ) {
    const who = pid ? `another process (pid ${pid})` : 'another process'
    super(`DATA_DIR ${dataDir} is in use by ${who}; stop it or choose another DATA_DIR`)
    this.name = 'DataDirLockedError'
  }
}

/*
 * The client uses one connection, but the server keeps a few spare slots: with a single slot,
 * postgres.js reconnecting (max_lifetime) or opening its separate `sql.listen` connection races the
 * old socket's teardown, is refused with a non-protocol line, and then hangs instead of failing.
 * Extra connections are multiplexed onto PGlite's one session; pglite-socket keeps an open
 * transaction's statements together.
 */
const SERVER_SLOTS = 4

/** Lock files this process holds: a LOCK naming our own pid is only ours if it is in here. */
const held = new Set<string>()

/**
 * PGlite (Postgres in WASM) under `dataDir`, served to the `postgres` driver on a Unix socket in
 * that directory. PGlite takes any user name and password, so the socket's directory is its only
 * lock: a loopback port would let every local user (or a sidecar sharing the loopback) in.
 */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const started = Date.now()
  const pgDir = join(opts.dataDir, 'pglite')
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 })
  await makePrivate(opts.dataDir, opts.log)
  const lock = await acquireLock(opts.dataDir)
  let db: PGlite | undefined
  let server: PGLiteSocketServer | undefined
  let socket: SocketPlace | undefined
  try {
    const initdb = !(await exists(join(pgDir, 'PG_VERSION')))
    db = await withUmask(0o077, () => PGlite.create({ dataDir: pgDir }))
    // PGlite makes its files 0666 whatever the umask; the 0700 DATA_DIR is what guards those made later.
    await tighten(pgDir)
    socket = await socketPath(opts.dataDir)
    // Left behind by a kill -9; the lock says no live process serves it.
    await rm(socket.path, { force: true })
    server = new PGLiteSocketServer({ db, path: socket.path, maxConnections: SERVER_SLOTS })
    await server.start()
    // The directory is what keeps others out; 0600 keeps the next start's privacy check quiet.
    if (PRIVATE) await chmod(socket.path, 0o600)
    const ready = { dataDir: opts.dataDir, socket: socket.path, initdb, ms: Date.now() - started }
    opts.log?.info(ready, 'embedded postgres ready')
    const clients = new Set<Sql>()
    let closing: Promise<void> | undefined
    const { path } = socket
    return {
      socket: path,
      connect: (options) => {
        // PGlite has one user and one database and ignores the names a client asks for.
        const sql = connect('postgres://postgres@localhost/postgres', { max: 1, ...options, path })
        clients.add(sql)
        return sql
      },
      close: () => (closing ??= shutdown({ clients, server: server!, db: db!, lock, pgDir, socket: socket! })),
    }
  } catch (err) {
    await server?.stop().catch(() => {})
    await db?.close().catch(() => {})
    await socket?.remove()
    await releaseLock(lock)
    throw err
  }
}

interface SocketPlace {
  path: string
  remove(): Promise<void>
}

/** Longest Unix socket path every platform binds (macOS: 104 bytes with its NUL). */
const SOCKET_PATH_MAX = 103

/**
 * `DATA_DIR/.s.PGSQL.5432` (the name psql looks for: `psql -h DATA_DIR -U postgres`), or, when
 * DATA_DIR's path is too long for a socket, a fresh 0700 directory in the system's temp dir.
 * Windows has no modes: a named pipe with a name no one can guess.
 */
async function socketPath(dataDir: string): Promise<SocketPlace> {
  if (!PRIVATE) {
    const path = `\\\\.\\pipe\\wix-install-engine-${randomBytes(16).toString('hex')}`
    return { path, remove: async () => {} }
  }
  const path = resolve(dataDir, '.s.PGSQL.5432')
  if (Buffer.byteLength(path) <= SOCKET_PATH_MAX) return { path, remove: () => rm(path, { force: true }) }
  const dir = await mkdtemp(join(tmpdir(), 'wie-pg-'))
  return { path: join(dir, '.s.PGSQL.5432'), remove: () => rm(dir, { recursive: true, force: true }) }
}

interface Running {
  clients: Set<Sql>
  server: PGLiteSocketServer
  db: PGlite
  lock: string
  pgDir: string
  socket: SocketPlace
}

async function shutdown({ clients, server, db, lock, pgDir, socket }: Running) {
  try {
    // Its own clients first: a server stopped under them would leave them reconnecting.
    await Promise.all([...clients].map((sql) => sql.end({ timeout: 5 })))
    await server.stop()
    // close() waits for queued queries, then flushes and shuts Postgres down cleanly.
    await db.close()
    // What it wrote since the start (WAL segments, new relations) is 0666 too.
    await tighten(pgDir).catch(() => {})
  } finally {
    await socket.remove().catch(() => {})
    await releaseLock(lock)
  }
}

const PRIVATE = process.platform !== 'win32'

/**
 * DATA_DIR holds the database (tokens, if encrypted) and the sandbox's secrets: only this user
 * may enter it. A directory or file others could read is named in a warning and made private.
 */
async function makePrivate(dataDir: string, log: EmbeddedOptions['log']) {
  if (!PRIVATE) return
  const warn = log?.warn?.bind(log) ?? ((obj: object, msg?: string) => console.warn(`Warning: ${msg}`, obj))
  // PGlite's own files are always 0666 (see tighten): only what is not PGlite's is worth a warning.
  const ours = (await readdir(dataDir)).filter((f) => f !== 'pglite').map((f) => join(dataDir, f))
  for (const path of [dataDir, ...ours]) {
    const { mode } = await stat(path)
    if ((mode & 0o077) === 0) continue
    const found = { path: resolve(path), mode: (mode & 0o777).toString(8) }
    warn(found, 'DATA_DIR: other users could read this; made it private')
  }
  await tighten(dataDir)
}

/** chmod 0700 every directory and 0600 every file under `path` (PGlite writes 0666). */
async function tighten(path: string): Promise<void> {
  if (!PRIVATE) return
  const s = await lstat(path).catch(() => undefined)
  if (!s || s.isSymbolicLink()) return
  if (!s.isDirectory()) return chmod(path, 0o600)
  await chmod(path, 0o700)
  for (const entry of await readdir(path)) await tighten(join(path, entry))
}

/** The umask is process-wide: keep the change to the one call that creates the database's directories. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  if (!PRIVATE) return fn()
  const previous = process.umask(mask)
  try {
    return await fn()
  } finally {
    process.umask(previous)
  }
}

async function acquireLock(dataDir: string): Promise<string> {
  const file = resolve(dataDir, 'LOCK')
  if (held.has(file)) throw new DataDirLockedError(dataDir, process.pid)
  // A few rounds: a stale lock is removed, then we race any other starter for a fresh `wx` create.
  for (let round = 0; round < 3; round++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 })
      held.add(file)
      return file
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10)
    // Our own pid here is a leftover of an earlier run that got the same pid (pid 1 in containers).
    if (pid > 0 && pid !== process.pid && isAlive(pid)) throw new DataDirLockedError(dataDir, pid)
    // Dead owner (kill -9, power loss) or unreadable file: Postgres recovers from its WAL on open.
    await rm(file, { force: true })
  }
  throw new DataDirLockedError(dataDir)
}

async function releaseLock(file: string) {
  held.delete(file)
  // Leave a lock that is no longer ours (a takeover after we were presumed dead) to its owner.
  const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10)
  if (pid === process.pid) await rm(file, { force: true })
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists but belongs to another user, so it is alive.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

async function exists(path: string) {
  return stat(path).then(
    () => true,
    () => false,
  )
}
