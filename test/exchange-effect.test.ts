import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createActor, toPromise, type AnyActorLogic } from 'xstate'
import { earlierRuns } from '../src/engine/index.ts'
import { installationWorkflow } from '../src/installation/workflow.ts'
import { freshDatabase } from './support/database.ts'
import { waitUntil } from './support/process.ts'
import { startService } from './support/service.ts'

/** The code exchange effect on its own: runs of one exchange that overlap (a lease taken over). */

const db = await freshDatabase()
t.teardown(db.drop)
const service = await startService(t, { db, engine: { poll: false } })
const { sql, vault, wix } = service.app

/** An installation waiting on its exchange (CodeReceived), made by hand: its id. */
async function waitingOnExchange() {
  const id = randomUUID()
  await sql`
    insert into wix_engine.workflows (id, machine, machine_version, key, state, reason, snapshot, version, created_at, updated_at)
    values (${id}, 'installation', 2, null, 'CodeReceived', null, '{}'::jsonb, 1, now(), now())`
  return id
}

t.test('two runs of one exchange past Wix: the run that files second succeeds too', async (t) => {
  // An installation waiting on its exchange, with the tokens a first run held before its lease ran out.
  const id = await waitingOnExchange()
  const instanceId = randomUUID()
  const tokens = service.wix.mintTokens(instanceId)
  await vault.hold(id, { accessToken: tokens.access_token, refreshToken: tokens.refresh_token, obtainedAt: new Date() }, ['CodeReceived'])

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

t.test('a re-run Wix refuses the code finds the tokens a run that lost its job filed meanwhile: no detour', async (t) => {
  const id = await waitingOnExchange()
  const { code, instanceId } = service.wix.issueCode()
  // The job's record of earlier runs: none finished, as for a run that lost its lease (and lived).
  const exchange = installationWorkflow({ wix, vault, now: () => new Date(), earlierRuns: (key, attempt) => earlierRuns(sql, key, attempt) })
    .machine.implementations.actors.exchangeCode as AnyActorLogic
  const run = (attempt: number) => toPromise(createActor(exchange, {
    input: { installationId: id, claimedInstanceId: instanceId, code, attempt, idempotencyKey: `${id}:${randomUUID()}` },
  }).start())
  const exchanges = () => service.wix.requests.filter((r) => r.endpoint === 'oauth/access' && (r.body as { code?: string }).code === code)
  // The re-run has looked for filed and held tokens (none yet) when its call reaches Wix, which answers it late.
  service.wix.failNext({ endpoint: 'oauth/access', grant: 'authorization_code', delayMs: 1_000 })
  const rerun = run(2)
  await waitUntil("the re-run's exchange is at Wix", () => exchanges().length === 1)
  const first = await run(1)
  t.equal(first.instanceId, instanceId, 'the first run exchanges the code and files the tokens')
  const second = await rerun.then((output) => output, (err: { code?: string }) => err.code)
  t.match(second, { instanceId }, 'the re-run, refused, finds them filed by this installation: not CODE_SPENT')
  t.same(exchanges().map((r) => r.status), [400, 200], 'Wix exchanged the code once, refusing the re-run')
})

t.test("a re-run whose earlier runs the retry budget held back (no call left) takes Wix's refusal of its code as a refusal, not a spent code", async (t) => {
  const id = await waitingOnExchange()
  const job = randomUUID()
  // Its first run asked this instance's retry budget for a retry and was refused: Wix never saw it.
  await sql`
    insert into wix_engine.job_attempts (job_id, attempt, workflow_id, name, outcome, started_at, finished_at, error)
    values (${job}, 1, ${id}, 'exchangeCode', 'retry', now(), now(), ${sql.json({ code: 'WIX_RETRY_BUDGET', retryable: true, retryAfterMs: 1000 })})`
  const exchange = installationWorkflow({ wix, vault, now: () => new Date(), earlierRuns: (key, attempt) => earlierRuns(sql, key, attempt) })
    .machine.implementations.actors.exchangeCode as AnyActorLogic
  const outcome = await toPromise(createActor(exchange, {
    input: { installationId: id, claimedInstanceId: randomUUID(), code: 'never-issued', attempt: 2, idempotencyKey: `${id}:${job}` },
  }).start()).then(() => 'exchanged', (err: { code?: string }) => err.code)
  t.equal(String(outcome), 'WIX_REJECTED', 'Wix refused a code it never issued: the installation fails on it, no detour for a new code')
})
