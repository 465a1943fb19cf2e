import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
/** Two PGlite instances writing one directory corrupt it; the second one must refuse to start. */
export class DataDirLockedError extends Error {
    dataDir;
    pid;
    code = 'DATA_DIR_LOCKED';
    constructor(dataDir, pid) {
        const who = pid ? `another process (pid ${pid})` : 'another process';
        super(`DATA_DIR ${dataDir} is in use by ${who}; stop it or choose another DATA_DIR`);
        this.dataDir = dataDir;
        this.pid = pid;
        this.name = 'DataDirLockedError';
    }
}
/*
 * The client uses one connection, but the server keeps a few spare slots: with a single slot,
 * postgres.js reconnecting (max_lifetime) or opening its separate `sql.listen` connection races the
 * old socket's teardown, is refused with a non-protocol line, and then hangs instead of failing.
 * Extra connections are multiplexed onto PGlite's one session; pglite-socket keeps an open
 * transaction's statements together.
 */
const SERVER_SLOTS = 4;
/** Lock files this process holds: a LOCK naming our own pid is only ours if it is in here. */
const held = new Set();
/** PGlite (Postgres in WASM) under `dataDir`, served on a loopback port for the `postgres` driver. */
export async function startEmbeddedPostgres(opts) {
    const started = Date.now();
    const pgDir = join(opts.dataDir, 'pglite');
    await mkdir(opts.dataDir, { recursive: true });
    const lock = await acquireLock(opts.dataDir);
    let db;
    let server;
    try {
        const initdb = !(await exists(join(pgDir, 'PG_VERSION')));
        db = await PGlite.create({ dataDir: pgDir });
        server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: SERVER_SLOTS });
        await server.start();
        // PGlite has one user and one database and ignores the names a client asks for.
        const url = `postgres://postgres@${server.getServerConn()}/postgres`;
        opts.log?.info({ dataDir: opts.dataDir, url, initdb, ms: Date.now() - started }, 'embedded postgres ready');
        let closing;
        return { url, close: () => (closing ??= shutdown(server, db, lock)) };
    }
    catch (err) {
        await server?.stop().catch(() => { });
        await db?.close().catch(() => { });
        await releaseLock(lock);
        throw err;
    }
}
async function shutdown(server, db, lock) {
    try {
        await server.stop();
        // close() waits for queued queries, then flushes and shuts Postgres down cleanly.
        await db.close();
    }
    finally {
        await releaseLock(lock);
    }
}
async function acquireLock(dataDir) {
    const file = resolve(dataDir, 'LOCK');
    if (held.has(file))
        throw new DataDirLockedError(dataDir, process.pid);
    // A few rounds: a stale lock is removed, then we race any other starter for a fresh `wx` create.
    for (let round = 0; round < 3; round++) {
        try {
            await writeFile(file, `${process.pid}\n`, { flag: 'wx' });
            held.add(file);
            return file;
        }
        catch (err) {
            if (err.code !== 'EEXIST')
                throw err;
        }
        const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
        // Our own pid here is a leftover of an earlier run that got the same pid (pid 1 in containers).
        if (pid > 0 && pid !== process.pid && isAlive(pid))
            throw new DataDirLockedError(dataDir, pid);
        // Dead owner (kill -9, power loss) or unreadable file: Postgres recovers from its WAL on open.
        await rm(file, { force: true });
    }
    throw new DataDirLockedError(dataDir);
}
async function releaseLock(file) {
    held.delete(file);
    // Leave a lock that is no longer ours (a takeover after we were presumed dead) to its owner.
    const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
    if (pid === process.pid)
        await rm(file, { force: true });
}
function isAlive(pid) {
    try {
        process.kill(pid, 0);
        return true;
    }
    catch (err) {
        // EPERM: it exists but belongs to another user, so it is alive.
        return err.code !== 'ESRCH';
    }
}
async function exists(path) {
    return stat(path).then(() => true, () => false);
}
