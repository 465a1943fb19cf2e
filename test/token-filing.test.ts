import t from 'tap'
import { ACCESS_TOKEN_TTL_MS } from '../src/installation/token-vault.ts'
import { freshDatabase, onEmbedded } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { waitUntil } from './support/process.ts'
import { startService, type Service } from './support/service.ts'

/**
 * The exchange files the tokens Wix gave straight under their instance: no held copy is written
 * on the way. Only a run that cannot file them (the instance lookup failing for good, the database
 * out, the run aborted) holds them, for its retry to file without spending the code again.
 */

const db = await freshDatabase()
t.teardown(db.drop)

type Spied = 'hold' | 'held' | 'fileHeld' | 'save'

/**
 * Counts the vault's calls an install makes (the effects use this very object); `around` may
 * stand in for a call, given the real one, to fail it as a database would.
 */
function spyOnVault(service: Service, around: Partial<Record<Spied, (real: (...a: never[]) => Promise<unknown>, n: number) => Promise<unknown>>> = {}) {
  const vault = service.app.vault
  const calls: Record<Spied, number> = { hold: 0, held: 0, fileHeld: 0, save: 0 }
  for (const name of Object.keys(calls) as Spied[]) {
    const real = (vault[name] as (...a: unknown[]) => Promise<unknown>).bind(vault)
    Object.assign(vault, {
      [name]: (...args: unknown[]) => {
        const n = ++calls[name]
        const call = () => real(...args)
        return around[name] ? around[name](call, n) : call()
      },
    } satisfies Partial<Record<Spied, unknown>>)
  }
  return calls as Readonly<typeof calls>
}

/** An error as postgres.js reports one: a SQLSTATE `code`. */
const pgError = (code: string, message: string) => Object.assign(new Error(message), { code })

/** A browser install up to the code exchange; resolves once the Redirect URL was answered. */
async function install(service: Service) {
  const owner = siteOwner(service)
  await owner.openAppUrl(`token-${Math.random()}`)
  const id = await owner.installationId()
  const back = await owner.approve()
  const page = await owner.callback(back)
  return { id, owner, page, code: back.searchParams.get('code')!, instanceId: back.searchParams.get('instanceId')! }
}

const settled = (service: Service, id: string) =>
  service.app.engine.waitFor(id, (w) => w.state !== 'CodeReceived' && w.state !== 'Tokened', 30_000)
const exchangeCalls = (service: Service, code: string) =>
  service.wix.requests.filter((r) => r.endpoint === 'oauth/access' && (r.body as { code?: string }).code === code)
const heldRows = async () => (await db.sql<{ n: number }[]>`select count(*)::int as n from wix_install.exchanged_tokens`)[0]!.n

/** Rows inserted into a table of wix_install, as Postgres's statistics count them. */
async function inserted(relname: string) {
  const [row] = await db.sql<{ n: number }[]>`
    select n_tup_ins::int as n from pg_stat_user_tables where schemaname = 'wix_install' and relname = ${relname}`
  return row?.n ?? 0
}

/** Instance lookups that fail for good: token-info and the instance endpoint, 503 on each of the run's 4 tries. */
function lookupFailsOnce(service: Service) {
  service.wix.failNext({ endpoint: 'oauth2/token-info', status: 503, times: 4 })
  service.wix.failNext({ endpoint: 'apps/v1/instance', status: 503, times: 4 })
}

t.test('an install files its tokens at once: no held copy is written', async (t) => {
  const service = await startService(t, { db })
  const spy = spyOnVault(service)
  const { id, page, code, instanceId } = await install(service)
  t.equal(page.status, 302, 'the browser is sent on')
  t.equal((await settled(service, id))?.state, 'SetupIncomplete', 'the installation completes')
  t.same({ hold: spy.hold, held: spy.held, fileHeld: spy.fileHeld, save: spy.save }, { hold: 0, held: 0, fileHeld: 0, save: 1 },
    'the tokens were filed by one save, never held nor looked for')
  t.equal(await heldRows(), 0, 'exchanged_tokens is empty')
  const [row] = await db.sql<{ workflow_id: string; expires: Date }[]>`
    select workflow_id, access_token_expires_at as expires from wix_install.instance_tokens where instance_id = ${instanceId}`
  t.equal(row?.workflow_id, id, 'filed under the instance, by this installation')
  const asked = exchangeCalls(service, code)[0]!.at
  const expiresIn = row!.expires.getTime() - asked
  t.ok(expiresIn <= ACCESS_TOKEN_TTL_MS && expiresIn > ACCESS_TOKEN_TTL_MS - 2_000,
    `the access token expires 5 minutes after it was asked for (${expiresIn} ms after Wix was asked)`)

  if (onEmbedded()) return
  // Each connection hands its counts to the shared statistics within a second of going idle.
  await waitUntil('the filing shows in the statistics', async () => (await inserted('instance_tokens')) >= 1, 10_000)
  await new Promise((r) => setTimeout(r, 1_500))
  t.equal(await inserted('exchanged_tokens'), 0, "Postgres's statistics: not one row was ever inserted into exchanged_tokens")
})

t.test("the instance lookup failing for good after Wix's answer: the tokens are held, and the retry files them without a second exchange", async (t) => {
  const service = await startService(t, { db })
  let heldAt: Date | undefined
  const spy = spyOnVault(service, {
    hold: async (real) => {
      await real()
      heldAt = (await db.sql<{ at: Date }[]>`select obtained_at as at from wix_install.exchanged_tokens`)[0]?.at
    },
  })
  lookupFailsOnce(service)
  const { id, code, instanceId } = await install(service)
  t.equal((await settled(service, id))?.state, 'SetupIncomplete', 'the installation completes')
  const calls = exchangeCalls(service, code)
  t.same(calls.map((r) => r.status), [200], 'the code was sent to Wix once')
  t.equal(spy.hold, 1, 'the run whose lookup failed held the tokens')
  t.ok(heldAt && heldAt.getTime() <= calls[0]!.at, 'with the time they were asked for, not the time they were held')
  t.equal(spy.fileHeld, 1, 'the retry filed the held copy')
  t.equal((await tokenHolder(instanceId)), id, 'under the instance, by this installation')
  t.equal(await heldRows(), 0, 'and no held copy is left')
  const [attempt] = await db.sql`select outcome, error ->> 'code' as code from wix_engine.job_attempts where workflow_id = ${id}`
  t.same(attempt && [attempt.outcome, attempt.code], ['retry', 'WIX_UNAVAILABLE'], 'the failed run is recorded with the lookup\'s error')
})

t.test('filing failing through a database outage: the tokens are held through a blip of its own, and the retry files them', async (t) => {
  const service = await startService(t, { db })
  let outage = true
  const spy = spyOnVault(service, {
    // Every try of the first run's filing, then the first try of its holding, meet the outage.
    save: async (real) => {
      if (outage) throw pgError('57P01', 'terminating connection due to administrator command')
      return real()
    },
    hold: async (real, n) => {
      if (n === 1) throw pgError('08006', 'connection failure')
      outage = false
      return real()
    },
  })
  const { id, code, instanceId } = await install(service)
  t.equal((await settled(service, id))?.state, 'SetupIncomplete', 'the installation completes')
  t.same(exchangeCalls(service, code).map((r) => r.status), [200], 'the code was sent to Wix once')
  t.equal(spy.save, 8, 'the filing rode out the outage as long as it could (8 tries)')
  t.equal(spy.hold, 2, 'holding was tried again past its blip')
  t.equal(spy.fileHeld, 1, 'the retry filed the held copy')
  t.equal(await tokenHolder(instanceId), id, 'under the instance, by this installation')
  t.equal(await heldRows(), 0, 'and no held copy is left')
})

t.test('tokens neither filed nor held: the retry finds the code spent and sends the browser back to Wix, never exchanging it twice', async (t) => {
  const service = await startService(t, { db, env: { REDIRECT_WAIT_MS: '100' } })
  const spy = spyOnVault(service, { hold: async () => { throw pgError('42501', 'permission denied for table exchanged_tokens') } })
  lookupFailsOnce(service)
  const { id, code } = await install(service)
  const back = await service.app.engine.waitFor(id, (w) => w.state !== 'CodeReceived', 30_000)
  t.equal(back?.state, 'Authorizing', 'the installation goes back for a new code')
  t.match((back?.context as { lastError?: unknown } | undefined)?.lastError, { code: 'CODE_SPENT' }, 'as for a code a dead run spent')
  t.equal(spy.hold, 1, 'the one try to hold failed')
  t.same(exchangeCalls(service, code).map((r) => r.status), [200, 400], 'the code was exchanged once: its second try was refused')
  const [attempt] = await db.sql`select error from wix_engine.job_attempts where workflow_id = ${id} order by attempt`
  t.match(attempt?.error, { code: 'TOKENS_NOT_KEPT', retryable: true }, 'the run that lost them says so, not Wix\'s "not done" (503)')
  t.match(attempt?.error.message, /503.*permission denied/s, 'naming both failures')
})

const tokenHolder = async (instanceId: string) =>
  (await db.sql<{ workflow_id: string }[]>`select workflow_id from wix_install.instance_tokens where instance_id = ${instanceId}`)[0]?.workflow_id

t.test('an installation cancelled while its exchange looks up whose the tokens are: its aborted run holds nothing', async (t) => {
  const service = await startService(t, { db, env: { REDIRECT_WAIT_MS: '100' } })
  let holds = 0
  const spy = spyOnVault(service, { hold: (real) => real().finally(() => holds++) })
  service.wix.failNext({ endpoint: 'oauth2/token-info', hang: true })
  const { id } = await install(service)
  await waitUntil('Wix holds the lookup', () => service.wix.requests.some((r) => r.endpoint === 'oauth2/token-info' && r.status === 0))
  t.equal((await service.api('POST', `/api/installations/${id}/cancel`)).json.state, 'Cancelled', 'an admin cancels the installation')
  await waitUntil('the run, its job cancelled, has tried to hold the tokens', () => holds === 1)
  t.equal(await heldRows(), 0, 'nothing is held: no run is left to file them (the cancel already dropped what was held)')
  t.equal(spy.save, 0, 'and nothing was filed')
})
