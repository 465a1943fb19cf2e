import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createActor, toPromise, type AnyActorLogic } from 'xstate'
import { installationWorkflow } from '../src/installation/workflow.ts'
import { freshDatabase } from './support/database.ts'
import { waitUntil } from './support/process.ts'
import { startService } from './support/service.ts'

/** The code exchange effect on its own: runs of one exchange that overlap (a lease taken over). */

const db = await freshDatabase()
t.teardown(db.drop)
const service = await startService(t, { db, engine: { poll: false } })
const { sql, vault, wix } = service.app

t.test('two runs of one exchange past Wix: the run that files second succeeds too', async (t) => {
  // An installation waiting on its exchange, with the tokens a first run held before its lease ran out.
  const id = randomUUID()
  const instanceId = randomUUID()
  await sql`
    insert into wix_engine.workflows (id, machine, machine_version, key, state, reason, snapshot, version, created_at, updated_at)
    values (${id}, 'installation', 2, null, 'CodeReceived', null, '{}'::jsonb, 1, now(), now())`
  const tokens = service.wix.mintTokens(instanceId)
  await vault.hold(id, { accessToken: tokens.access_token, refreshToken: tokens.refresh_token })

  const exchange = installationWorkflow({ wix, vault, now: () => new Date() }).machine.implementations.actors.exchangeCode as AnyActorLogic
  const run = () => toPromise(createActor(exchange, { input: { installationId: id, claimedInstanceId: instanceId, code: 'spent', attempt: 2 } }).start())
  const lookups = () => service.wix.requests.filter((r) => r.endpoint === 'oauth2/token-info').length
  // The later run's question to Wix is answered late: the earlier run files the tokens meanwhile.
  service.wix.failNext({ endpoint: 'oauth2/token-info', delayMs: 1_000 })
  const before = lookups()
  const late = run()
  await waitUntil('the late run has asked Wix whose the tokens are', () => lookups() === before + 1)
  const early = await run()
  t.equal(early.instanceId, instanceId, 'the earlier run files the tokens')
  const second = await late.then((output) => output, (err: { code?: string }) => err.code)
  t.match(second, { instanceId }, 'and the later run, finding them filed by this installation, succeeds (not TOKENS_SUPERSEDED)')
  const [row] = await sql`select workflow_id from wix_install.instance_tokens where instance_id = ${instanceId}`
  t.equal(row?.workflow_id, id, "the tokens are the installation's")
  t.equal(await vault.held(id), undefined, 'and no held copy is left')
})
