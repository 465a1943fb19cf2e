import postgres from 'postgres'
import t from 'tap'
import { request } from 'undici'
import { freshDatabase, onEmbedded } from './support/database.ts'
import { testClock } from './support/engine.ts'
import { startService } from './support/service.ts'

/**
 * /metrics is open to the internet: however often it is scraped, the statements that count
 * installations run at most once per METRICS_MAX_AGE_SECONDS, here against 100,000 of them.
 */

const db = await freshDatabase()
t.teardown(db.drop)

const ROWS = 100_000
await db.sql`
  insert into wix_engine.workflows (id, machine, machine_version, key, state, reason, snapshot, version, created_at, updated_at)
  select gen_random_uuid(), 'installation', 1, null,
         case when i % 10 = 0 then 'ConsentAbandoned' else 'Finished' end,
         case when i % 10 = 0 then 'consent_abandoned' end,
         '{}'::jsonb, 1, now(), now()
  from generate_series(1, ${ROWS}) as i`
await db.sql`analyze wix_engine.workflows`

t.test('many scrapes, one count', async (t) => {
  // Every statement the service sends, seen by the driver it runs on.
  const statements: string[] = []
  const debug = (_conn: number, query: string) => statements.push(query)
  const sql = postgres(db.url, { max: onEmbedded() ? 1 : 4, onnotice: () => {}, debug })
  t.teardown(() => sql.end())
  const clock = testClock(new Date())
  const service = await startService(t, { db: { ...db, sql }, now: clock.now, engine: { poll: false } })
  const counts = () => statements.filter((q) => /from wix_engine.workflows\s+group by/.test(q)).length
  const scrape = async () => {
    const res = await request(`${service.url}/metrics`)
    return { status: res.statusCode, text: await res.body.text() }
  }

  const first = await Promise.all(Array.from({ length: 10 }, scrape))
  t.ok(first.every((r) => r.status === 200), '10 concurrent scrapes all answer 200')
  t.equal(counts(), 1, 'and share a single count of the installations')
  const finished = `wix_install_installations{machine="installation",state="Finished"} ${ROWS * 0.9}`
  t.ok(first.every((r) => r.text.includes(finished)), 'which is right')
  for (let round = 0; round < 5; round++) await Promise.all(Array.from({ length: 10 }, scrape))
  t.equal(counts(), 1, '50 more scrapes within the max age count nothing again')

  clock.advance(5_000)
  await service.app.sql`
    insert into wix_engine.workflows (id, machine, machine_version, key, state, reason, snapshot, version, created_at, updated_at)
    values (gen_random_uuid(), 'installation', 1, null, 'Finished', null, '{}'::jsonb, 1, now(), now())`
  const later = await Promise.all(Array.from({ length: 10 }, scrape))
  t.equal(counts(), 2, 'once the max age has passed, one scrape counts again for all')
  t.ok(later.every((r) => r.text.includes(`state="Finished"} ${ROWS * 0.9 + 1}`)), 'and sees the new installation')
})

t.test('METRICS_TOKEN closes /metrics to everyone else', async (t) => {
  const token = 'Mx7-qP2v9RkT4wLs8ZcN3yHb6JdF'
  const service = await startService(t, { db, env: { METRICS_TOKEN: token } })
  const scrape = async (headers: Record<string, string>) => {
    const res = await request(`${service.url}/metrics`, { headers })
    return { status: res.statusCode, text: await res.body.text() }
  }
  const anonymous = await scrape({})
  t.equal(anonymous.status, 401, 'a scrape without the token is refused')
  t.match(JSON.parse(anonymous.text), { code: 'METRICS_UNAUTHORIZED' }, 'with its named code')
  t.notOk(anonymous.text.includes('wix_install_'), 'and no metric')
  t.equal((await scrape({ authorization: `Bearer ${token}x` })).status, 401, 'a wrong token is refused')
  const admin = await scrape({ authorization: `Bearer ${service.config.adminToken}` })
  t.equal(admin.status, 401, 'the admin token is not the metrics token')
  const scraper = await scrape({ authorization: `Bearer ${token}` })
  t.equal(scraper.status, 200, 'the scraper with the token gets the metrics')
  t.match(scraper.text, /wix_install_installations/, 'all of them')
})
