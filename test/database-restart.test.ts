import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { connect } from '../src/db/connect.ts'
import { startFakeWix } from '../src/sandbox/fake-wix.ts'
import { freshDatabase, needsRealPostgres, postgresProxy, upstreamOf } from './support/database.ts'
import { isHealthy, waitUntil } from './support/process.ts'
import { freePort } from './support/service.ts'

/**
 * A database restart never ends a process, wherever it lands. These restarts land at the one
 * point the chaos rehearsal hit by chance, under load: while a connection is opening. Postgres
 * answers the connection's startup, then goes (its first statement cut off, new connections
 * refused for a moment) and comes back. The server runs as production runs it (src/server.ts, a
 * process of its own, exiting on an unhandled rejection); the database is the real one, behind a
 * TCP front that plays the restart.
 */

// Every test here needs a real server: on the embedded database none runs, so none is made.
const skip = needsRealPostgres('TCP fronts and server processes')
const db = skip ? undefined : await freshDatabase()
if (db) t.teardown(db.drop)

/**
 * A TCP front for the database. `restartAt()` cuts every connection if asked (the server went),
 * then lets connections through until one writes what `at` picks (its startup message is its
 * first write, its first statement its second): that one is cut there, and new connections are
 * refused for `downMs` (the server going again), then all goes through as before.
 */
async function restartingDatabase(dbUrl: string, downMs = 1_000) {
  let at: ((text: string, nth: number) => boolean) | undefined
  let sprung: () => void = () => {}
  const proxy = await postgresProxy(dbUrl, upstreamOf(dbUrl), (client, upstream) => {
    for (const s of [client, upstream]) s.on('error', () => {})
    let writes = 0
    client.on('data', (chunk) => {
      if (at?.(chunk.toString('latin1'), ++writes)) {
        at = undefined
        proxy.refuse()
        client.end() // the server closed it: a FIN, as a restarting Postgres does
        upstream.destroy()
        setTimeout(() => void proxy.accept().then(sprung), downMs)
        return
      }
      upstream.write(chunk)
    })
    upstream.pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.end())
  })
  return {
    url: proxy.url,
    /** Resolves once the restart has played out: the connection cut where `at` said, the server back. */
    restartAt(o: { cutOpenConnections: boolean; at: (text: string, nth: number) => boolean }) {
      at = o.at
      if (o.cutOpenConnections) proxy.cut()
      return new Promise<void>((resolve) => (sprung = resolve))
    },
    close: proxy.destroy,
  }
}

/** src/server.ts in a process of its own, its output kept; `gone` says how it ended, if it did. */
async function serverProcess(t: Test, databaseUrl: string) {
  const fake = await startFakeWix({ appId: 'restart-app', appSecret: randomBytes(16).toString('hex') })
  t.teardown(fake.close)
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      ...process.env, DATABASE_URL: databaseUrl, PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`,
      WIX_APP_ID: 'restart-app', WIX_APP_SECRET: fake.wix.appSecret, WIX_WWW_URL: fake.url, WIX_API_URL: fake.url,
      ADMIN_TOKEN: randomBytes(18).toString('hex'), COOKIE_SECRET: randomBytes(32).toString('hex'),
      TOKEN_ENCRYPTION_KEY: `k1:${randomBytes(32).toString('base64')}`, LOG_LEVEL: 'warn', RATE_LIMIT_PER_MINUTE: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  let gone: string | undefined
  child.once('exit', (code, signal) => (gone = `exited ${signal ?? code}`))
  t.teardown(() => {
    if (!gone) child.kill('SIGKILL')
  })
  const url = `http://127.0.0.1:${port}`
  /** Waits until /healthz answers 200; fails at once, with the process's output, if it has ended. */
  const answers = (what: string) => waitUntil(what, async () => {
    if (gone) throw new Error(`the server ${gone}; its output:\n${output.slice(-4_000)}`)
    return isHealthy(url)
  })
  return { answers, alive: () => gone === undefined, output: () => output }
}

t.test('Postgres restarting while a running server opens a connection: the process lives on and answers again', {
  skip,
}, async (t) => {
  const front = await restartingDatabase(db!.url)
  t.teardown(front.close)
  const server = await serverProcess(t, front.url)
  await server.answers('the server answers')

  // Every session cut; the first connection to open again (the job poll's, a health check's)
  // is cut at its first statement, and Postgres refuses connections for a second.
  // The wake-ups' LISTEN connection goes by: a pool's connection is the one to catch.
  const restarted = front.restartAt({ cutOpenConnections: true, at: (text, nth) => nth === 2 && !text.includes('listen "') })
  await restarted
  t.pass('the restart landed while a connection was opening')
  await server.answers('the server answers again')
  t.ok(server.alive(), 'the process is still running')
  t.notMatch(server.output(), /unhandled rejection|TypeError/, 'and logged no unhandled rejection or uncaught error')
})

/** A server started while Postgres restarts, the cut landing where `at` says: it starts and stays. */
async function startsThroughRestart(t: Test, at: (text: string, nth: number) => boolean, where: string) {
  const front = await restartingDatabase(db!.url)
  t.teardown(front.close)
  const restarted = front.restartAt({ cutOpenConnections: false, at })
  const server = await serverProcess(t, front.url)
  await restarted
  t.pass(`the restart landed while ${where}`)
  await server.answers('the server answers')
  t.ok(server.alive(), 'the process is still running')
  t.notMatch(server.output(), /unhandled rejection|TypeError/, 'and logged no unhandled rejection or uncaught error')
}

t.test('Postgres restarting while a server starts opens its first connection: it starts all the same', { skip },
  (t) => startsThroughRestart(t, (_, nth) => nth === 2, 'the first connection was opening'))

// The first statement naming the engine's migrations table is cut, wherever it is sent.
t.test('Postgres restarting while a server starts reads its migrations: it starts all the same', { skip },
  (t) => startsThroughRestart(t, (text) => /wix_engine"?\."?migrations/.test(text), 'the server read its migrations'))

// The driver's internals fetchTypesOnce leans on (postgres.js 3.4.9, pinned): the pool's options
// say whether a connection fetches the array types, read as each connection opens, and the types
// fetched once serve every connection of the pool.
t.test("postgres.js: a pool's first connection fetches the array types, its later ones do not, and all read and write arrays", {
  skip,
}, async (t) => {
  const sql = connect(db!.url, { max: 2 })
  t.teardown(() => sql.end({ timeout: 1 }))
  const statements: string[] = []
  ;(sql.options as unknown as { debug: (connection: number, query: string) => void }).debug = (_, query) => void statements.push(query)
  const typesFetched = () => statements.filter((s) => /pg_catalog\.pg_type/.test(s)).length
  await sql`select 1`
  t.equal(typesFetched(), 1, 'the first connection fetched them')
  // Two at once: the second opens a connection of its own.
  const ids = [randomUUID(), randomUUID()]
  const [a, b] = await Promise.all([
    sql<{ xs: string[] }[]>`select pg_sleep(0.2), array['a', 'b,c']::text[] as xs`,
    sql<{ ids: string[] }[]>`select pg_sleep(0.2), ${ids}::uuid[] as ids`,
  ])
  t.ok(statements.filter((s) => /pg_sleep/.test(s)).length === 2, 'both ran')
  t.equal(typesFetched(), 1, 'the second connection did not ask again')
  t.same(a![0]!.xs, ['a', 'b,c'], 'a text[] still reads as an array')
  t.same(b![0]!.ids, ids, 'a uuid[] parameter still goes as an array and comes back as one')
})
