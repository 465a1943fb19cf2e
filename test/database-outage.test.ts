import t from 'tap'
import { connect } from '../src/db/connect.ts'
import { createWakeups, WAKEUP_CHANNEL } from '../src/engine/wakeups.ts'
import { databaseGate, freshDatabase, needsRealPostgres } from './support/database.ts'
import { waitUntil } from './support/process.ts'
import { startService } from './support/service.ts'

/** Without its database the service answers 503 with Retry-After, never a 500. */

const db = await freshDatabase()
t.teardown(db.drop)

t.test('the database goes away', async (t) => {
  const sql = connect(db.url, { max: 2 })
  const service = await startService(t, { db: { ...db, sql } })
  t.equal((await service.api('GET', '/healthz')).status, 200, 'healthy while the database is there')
  await sql.end({ timeout: 1 })
  for (const [method, path] of [['GET', '/healthz'], ['GET', '/wix/app-url?token=t'], ['GET', '/api/installations'], ['POST', '/api/installations/x/finish']] as const) {
    const res = await service.api(method, path)
    t.equal(res.status, 503, `${method} ${path}: 503`)
    t.ok(res.headers['retry-after'], `${method} ${path}: with Retry-After`)
  }
  const res = await service.api('GET', '/api/installations')
  t.equal(res.json.code, 'DATABASE_UNAVAILABLE', 'named DATABASE_UNAVAILABLE')
  t.notMatch(service.logs.join(''), /"level":50/, 'and not logged as a server error')
})

t.test('a database that is up but full (53300) or read-only (25006) gets 503 with Retry-After, not 500', async (t) => {
  const service = await startService(t, { db })
  for (const code of ['53300', '25006']) {
    // Every new workflow's insert fails as a full server or a standby after a failover would fail it.
    await db.sql.unsafe(`
      create function refuse() returns trigger language plpgsql as $$
      begin raise exception 'the database refuses' using errcode = '${code}'; end $$;
      create trigger refuse before insert on wix_engine.workflows for each row execute function refuse();`)
    const res = await service.api('GET', '/wix/app-url?token=t')
    await db.sql.unsafe('drop trigger refuse on wix_engine.workflows; drop function refuse()')
    t.equal(res.status, 503, `${code}: the App URL answers 503`)
    t.ok(res.headers['retry-after'], `${code}: with Retry-After`)
    t.equal(res.json.code, 'DATABASE_UNAVAILABLE', `${code}: named DATABASE_UNAVAILABLE`)
  }
  t.equal((await service.api('GET', '/api/installations')).status, 200, 'and nothing else was turned away meanwhile')
  t.notMatch(service.logs.join(''), /"level":50/, 'nothing was logged as a server error')
})

t.test('the database comes back: the pool reconnects within seconds, however long it was gone', async (t) => {
  // A port where nothing listens (connections refused) until it forwards to the database.
  const gate = await databaseGate(db.url)
  gate.close()
  const sql = connect(gate.url, { max: 2 })
  t.teardown(async () => {
    await sql.end({ timeout: 1 })
    gate.destroy()
  })

  // Many refused connections: postgres.js's own backoff would now wait 10–20 s to reconnect.
  for (let i = 0; i < 10; i++) await sql`select 1`.catch(() => {})
  await gate.open()
  const backAt = Date.now()
  let answered = false
  while (!answered && Date.now() - backAt < 5_000) {
    answered = await sql`select 1`.then(() => true, () => false)
    if (!answered) await new Promise((r) => setTimeout(r, 100))
  }
  t.ok(answered, 'a query succeeds within 5 s of the database being reachable again')
})

t.test('wake-ups are heard again after an outage: LISTEN comes back with the database', { skip: needsRealPostgres('LISTEN') }, async (t) => {
  const gate = await databaseGate(db.url)
  const sql = connect(gate.url, { max: 2 })
  const wakeups = createWakeups(sql, { warn() {}, info() {}, error() {}, debug() {} } as never, true)
  t.teardown(async () => {
    await wakeups.stop()
    await sql.end({ timeout: 1 })
    gate.destroy()
  })
  await wakeups.start()
  const heard: string[] = []
  wakeups.on((payload) => heard.push(payload))

  // Every connection cut, new ones refused for longer than the first re-listen takes to fail.
  gate.destroy()
  await new Promise((r) => setTimeout(r, 3_000))
  await gate.open()
  const backAt = Date.now()
  while (!heard.length && Date.now() - backAt < 10_000) {
    await db.sql`select pg_notify(${WAKEUP_CHANNEL}, 'after the outage')`
    await new Promise((r) => setTimeout(r, 200))
  }
  t.same(heard.slice(0, 1), ['after the outage'], 'a notification reaches this process within 10 s of the database coming back')
})

// The driver keeps a channel whose first LISTEN failed and listens again when its connection
// comes back (postgres.js 3.4): the engine must not call listen() a second time (the handler
// would run twice). This holds the driver to it.
t.test('a LISTEN that failed at startup is tried again: wake-ups are heard once the database is there', {
  skip: needsRealPostgres('LISTEN'),
}, async (t) => {
  const gate = await databaseGate(db.url)
  gate.close()
  const sql = connect(gate.url, { max: 2 })
  const wakeups = createWakeups(sql, { warn() {}, info() {}, error() {}, debug() {} } as never, true)
  t.teardown(async () => {
    await wakeups.stop()
    await sql.end({ timeout: 1 })
    gate.destroy()
  })
  await wakeups.start() // refused: the database is not there yet
  const heard: string[] = []
  wakeups.on((payload) => heard.push(payload))
  await gate.open()
  await waitUntil('a notification reaches this process', async () => {
    await db.sql`select pg_notify(${WAKEUP_CHANNEL}, 'the database is there')`
    return heard.length > 0
  })
  t.same(heard.slice(0, 1), ['the database is there'], 'LISTEN was tried again without a restart')
})
