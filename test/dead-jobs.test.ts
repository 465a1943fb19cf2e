import { randomUUID } from 'node:crypto'
import t from 'tap'
import { freshDatabase } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { waitUntil } from './support/process.ts'
import { startService } from './support/service.ts'
import { addEffect, effectsOf } from './support/engine.ts'

/** A job that can never run is not reclaimed forever: it ends dead, and admins see it. */

const db = await freshDatabase()
t.teardown(db.drop)

t.test('a poison job ends dead, even for a workflow that moved on, and shows in /api/stats, /api/jobs/dead and /metrics', async (t) => {
  const service = await startService(t, { db, env: { METRICS_MAX_AGE_SECONDS: '0' } })
  const owner = siteOwner(service)
  await owner.startFromPlatform()
  const workflowId = await owner.installationId()
  const jobId = randomUUID()
  // A payload no configured key opens: what a retired TOKEN_ENCRYPTION_KEY leaves behind.
  await addEffect(service.app.sql, workflowId, { id: jobId, name: 'exchangeCode', payload: 'v1.retired.AAAA.BBBB' })
  await waitUntil('the job is dead', async () => {
    const [row] = await service.app.sql<{ status: string }[]>`select status from wix_engine.jobs where id = ${jobId}`
    return row?.status === 'dead'
  }, 10_000)
  t.same(await effectsOf(service.app.sql, workflowId), [], 'and it left its workflow\'s row: no claim takes it again')

  const stats = (await service.api('GET', '/api/stats')).json
  t.equal(stats.jobs.dead.PAYLOAD_UNREADABLE, 1, '/api/stats counts it by reason')
  const dead = (await service.api('GET', '/api/jobs/dead')).json
  t.same(dead.items.map((j: { id: string; workflowId: string }) => [j.id, j.workflowId]), [[jobId, workflowId]], '/api/jobs/dead lists it with its installation')
  t.equal(dead.items[0].reason.code, 'PAYLOAD_UNREADABLE', 'and its reason')
  t.notMatch(JSON.stringify(dead), /AAAA\.BBBB/, 'never its payload')
  const metrics = await (await fetch(`${service.url}/metrics`)).text()
  t.match(metrics, /wix_install_dead_jobs\{kind="effect",reason="PAYLOAD_UNREADABLE"\} 1/, '/metrics has a gauge for it')
  t.equal((await service.api('GET', '/api/jobs/dead', { token: null })).status, 401, 'the list needs the admin token')
})
