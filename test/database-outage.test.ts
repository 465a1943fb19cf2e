import t from 'tap'
import { connect } from '../src/db/connect.ts'
import { freshDatabase } from './support/database.ts'
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
