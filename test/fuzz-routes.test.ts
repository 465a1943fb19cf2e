import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { Client } from 'undici'
import { freshDatabase } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { ADMIN_TOKEN, startService, type Service } from './support/service.ts'

/**
 * Property-based tests on every registered route: random, repeated, oversized and malformed path
 * parameters, query strings, headers, cookies and bodies, sent over real HTTP. Never a 5xx, never
 * a secret in a response, and — unless the request is an authorised, well-formed call that is
 * meant to change something — nothing changes in the database and Wix hears nothing.
 */

// A fixed default keeps CI repeatable; FUZZ_SEED=$RANDOM explores further.
const seed = Number(process.env.FUZZ_SEED ?? 20261128)
// `npm test` fuzzes a sample (20 a route; 120 for the Redirect URL and the admin API, whose checks
// below need them); `npm run test:release` (WIE_TEST_RELEASE) twice as many.
const RUNS = Number(process.env.FUZZ_RUNS ?? (process.env.WIE_TEST_RELEASE ? 40 : 20))
// A guard against a hang, not a speed check: beside three other test files it can take minutes.
t.setTimeout(Math.max(240_000, RUNS * 6_000 + 60_000))
t.comment(`fast-check seed ${seed} (rerun with FUZZ_SEED=${seed})`)

const db = await freshDatabase()
t.teardown(db.drop)

// ---- the installations the requests aim at, one in each interesting state -------------------------

async function prepare(service: Service) {
  const authorizing = siteOwner(service)
  await authorizing.openAppUrl('fuzz-authorizing')
  const setup = siteOwner(service)
  await setup.openAppUrl('fuzz-setup')
  const setupStateCookie = setup.browser.jar.get(setup.stateCookie)!.value
  const setupInstance = randomUUID()
  await setup.callback(await setup.approve(setupInstance))
  const finished = siteOwner(service)
  await finished.openAppUrl('fuzz-finished')
  const finishedInstance = randomUUID()
  await finished.callback(await finished.approve(finishedInstance))
  const cancelled = siteOwner(service)
  await cancelled.startFromPlatform()

  const ids = {
    authorizing: await authorizing.installationId(),
    setup: await setup.installationId(),
    finished: await finished.installationId(),
    cancelled: await cancelled.installationId(),
  }
  const { engine } = service.app
  await engine.waitFor(ids.setup, (w) => w.statePath === 'SetupIncomplete.waiting', 5_000)
  await engine.waitFor(ids.finished, (w) => w.statePath === 'SetupIncomplete.waiting', 5_000)
  await service.api('POST', `/api/installations/${ids.finished}/finish`)
  await service.api('POST', `/api/installations/${ids.cancelled}/cancel`)
  const cookie = (owner: ReturnType<typeof siteOwner>, name: string) => owner.browser.jar.get(name)?.value
  return {
    ids,
    instanceIds: { setup: setupInstance, finished: finishedInstance },
    states: { authorizing: authorizing.state, setup: setup.state, finished: finished.state },
    cookies: {
      /** The live state cookie of the Authorizing installation: with its state, a callback would be accepted. */
      authorizingState: cookie(authorizing, authorizing.stateCookie)!,
      /** A spent state's cookie: replaying its callback must get STATE_ALREADY_USED. */
      setupState: setupStateCookie,
      setupFlow: cookie(setup, setup.flowCookie)!,
      finishedFlow: cookie(finished, finished.flowCookie)!,
    },
  }
}

// ---- what "nothing changed" means --------------------------------------------------------------------

interface Fingerprint {
  /** `timers`: how many pending timers the row holds (they become jobs once due); `effects`: its live effects. */
  workflows: { id: string; state: string; version: number; timers: number; effects: unknown }[]
  jobs: { id: string; workflow_id: string; status: string; attempts: number }[]
  wixCalls: number
  serverErrors: number
}

async function fingerprint(service: Service): Promise<Fingerprint> {
  const workflows = await db.sql<Fingerprint['workflows']>`select id, state, version, jsonb_array_length(timers) as timers, effects from wix_engine.workflows order by id`
  const jobs = await db.sql<Fingerprint['jobs']>`select id, workflow_id, status, attempts from wix_engine.jobs order by id`
  return {
    workflows: [...workflows],
    jobs: [...jobs],
    wixCalls: service.wix.requests.length,
    serverErrors: service.logs.filter((l) => /"level":(50|60)/.test(l)).length,
  }
}

/**
 * Nothing changed between `before` and `after`, except that a route that starts installations may
 * have started new ones: in Authorizing, with their consent timer (in the row) and no job.
 */
function unchanged(before: Fingerprint, after: Fingerprint, o: { mayStart: boolean }): string | undefined {
  const known = new Set(before.workflows.map((w) => w.id))
  const kept = after.workflows.filter((w) => known.has(w.id))
  const added = after.workflows.filter((w) => !known.has(w.id))
  if (JSON.stringify(kept) !== JSON.stringify(before.workflows)) return `installations changed: ${JSON.stringify(before.workflows)} → ${JSON.stringify(kept)}`
  if (added.length && !o.mayStart) return `installations were created: ${JSON.stringify(added)}`
  if (added.some((w) => w.state !== 'Authorizing')) return `a new installation is not Authorizing: ${JSON.stringify(added)}`
  const jobsOfKnown = after.jobs.filter((j) => known.has(j.workflow_id))
  if (JSON.stringify(jobsOfKnown) !== JSON.stringify(before.jobs)) return `jobs changed: ${JSON.stringify(before.jobs)} → ${JSON.stringify(jobsOfKnown)}`
  const newJobs = after.jobs.filter((j) => !known.has(j.workflow_id))
  if (newJobs.length || added.some((w) => w.timers !== 1)) return `new installations came with jobs ${JSON.stringify(newJobs)} or not one timer ${JSON.stringify(added)}`
  if (after.wixCalls !== before.wixCalls) return `Wix was called ${after.wixCalls - before.wixCalls} time(s)`
  if (after.serverErrors !== before.serverErrors) return 'a server error was logged'
  return undefined
}

// ---- generators ----------------------------------------------------------------------------------------

/** Often nothing: each of many fields being malformed at once would make every request a 400. */
const sometimes = <T>(arb: fc.Arbitrary<T>, noneWeight = 2) =>
  fc.oneof({ weight: noneWeight, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb })

const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c))
/** A header value Node will send: printable ASCII, sometimes long. */
const headerValue = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: printable, maxLength: 80 }) },
  { weight: 1, arbitrary: fc.string({ unit: printable, minLength: 1, maxLength: 3 }).chain((s) => fc.integer({ min: 1_000, max: 12_000 }).map((n) => s.repeat(n).slice(0, n))) },
)
const unicode = fc.string({ unit: 'grapheme', maxLength: 40 })
/** Raw bits of URL that must stay unencoded to be malformed. */
const rawBits = fc.constantFrom('%', '%ZZ', '%E0%A4%A', '%00', '%C0%AF', '%2e%2e%2f', '%FF%FE', 'a+b', '%u0041', '..', '.', '%2F', '%C0%AE%C0%AE', '~', "'", '"', '<script>', '%0d%0aSet-Cookie:x=1')
const longString = fc.tuple(fc.string({ unit: printable, minLength: 1, maxLength: 4 }), fc.integer({ min: 150, max: 6_000 })).map(([s, n]) => s.repeat(n).slice(0, n))

/** A query value and how it goes on the wire: encoded (its decoded value known) or raw. */
type Value = { value: string; raw: boolean }
const encoded = (a: fc.Arbitrary<string>) => a.map((value): Value => ({ value, raw: false }))
const valueArb = (specials: string[] = []) =>
  fc.oneof(
    encoded(fc.string({ maxLength: 40 })),
    encoded(unicode),
    encoded(longString),
    encoded(fc.constantFrom('', ' ', 'null', 'undefined', 'true', '0', '-1', '1e309', 'NaN', 'Infinity', '[]', '{}', '__proto__', 'constructor', ...specials)),
    rawBits.map((value): Value => ({ value, raw: true })),
  )
type Pair = { key: string; value: Value }
const queryString = (pairs: Pair[]) =>
  pairs.map((p) => `${encodeURIComponent(p.key)}=${p.value.raw ? p.value.value : encodeURIComponent(p.value.value)}`).join('&')

/** Random keys, the route's own keys with malformed values, repeated keys. */
const queryArb = (keys: string[], values: Record<string, fc.Arbitrary<Value>> = {}) => {
  const known = keys.length
    ? fc.constantFrom(...keys).chain((key) => (values[key] ?? valueArb()).map((value) => ({ key, value })))
    : fc.constant<Pair | undefined>(undefined)
  const pair = fc.oneof(
    { weight: 3, arbitrary: known },
    { weight: 1, arbitrary: fc.record({ key: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('__proto__', 'constructor', 'a[b]', 'a[]', '')), value: valueArb() }) },
  )
  return fc.array(pair, { maxLength: 8 }).map((pairs) => pairs.filter((p): p is Pair => p !== undefined))
}

/** Dates inside and far outside what Postgres can store. */
const dateText = fc.oneof(
  fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom('2026-01-01', '0', '-1', '99999', '275760-09-13', '-271821-04-20', '0000-01-01', '1970-01-01T00:00:00Z', 'yesterday'),
)

const contentType = sometimes(
  fc.oneof(
    fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', 'application/json; charset=latin1', 'application/json;;;', 'text/html', 'application/*'),
    headerValue,
  ),
  1,
)
const body = sometimes(
  fc.oneof(
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
    fc.string({ maxLength: 200 }),
    fc.uint8Array({ maxLength: 2_000 }).map((b) => Buffer.from(b)),
    fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.integer({ min: 60_000, max: 100_000 })).map(([s, n]) => s.repeat(Math.ceil(n / s.length)).slice(0, n)),
    fc.constantFrom('{"oops', '[', 'null', '{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}', '{}'),
  ),
)

const REAL_AUTH = `Bearer ${ADMIN_TOKEN}`
const authArb = sometimes(
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(REAL_AUTH) },
    { weight: 1, arbitrary: fc.constantFrom(`bearer ${ADMIN_TOKEN}`, `Bearer  ${ADMIN_TOKEN}`, `Bearer ${ADMIN_TOKEN}x`, `Bearer ${ADMIN_TOKEN.slice(0, -1)}`, ADMIN_TOKEN, 'Bearer ', 'Bearer', `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`) },
    { weight: 2, arbitrary: headerValue.map((v) => `Bearer ${v}`) },
    { weight: 1, arbitrary: headerValue },
  ),
  1,
)

interface Req {
  method: string
  path: string
  headers: Record<string, string>
  body?: string | Buffer
  /** An authorised call that may legitimately change something: left to the last subtest. */
  mayChange?: boolean
  mayStart?: boolean
}

/** Headers every route gets at random: Accept, proxy headers (trustProxy is on), a request id, cookies. */
const commonHeaders = (cookie: fc.Arbitrary<string | undefined>) =>
  fc.record({
    accept: sometimes(fc.oneof(fc.constantFrom('text/html', 'application/json', '*/*', 'text/html,application/xhtml+xml'), headerValue), 1),
    'x-forwarded-for': sometimes(fc.oneof(fc.ipV4(), fc.ipV6(), headerValue)),
    'x-forwarded-host': sometimes(headerValue),
    'x-forwarded-proto': sometimes(fc.oneof(fc.constantFrom('https', 'http', 'ftp'), headerValue)),
    'x-request-id': sometimes(headerValue),
    cookie,
  }, { requiredKeys: [] })

const definedOnly = (h: Record<string, string | undefined>) =>
  Object.fromEntries(Object.entries(h).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''))

// ---- the fuzzing -----------------------------------------------------------------------------------------

t.test('every route, fuzzed: never a 5xx, never a secret, nothing changed', async (t) => {
  t.setTimeout(Math.max(230_000, RUNS * 6_000))
  const service = await startService(t, { db })
  const p = await prepare(service)
  const client = new Client(service.url, { pipelining: 0 })
  t.teardown(() => client.close())

  const state = (await db.sql<{ id: string; state: string }[]>`select id, state from wix_engine.workflows order by created_at`).map((r) => r.state)
  t.same(state, ['Authorizing', 'SetupIncomplete', 'Finished', 'Cancelled'], 'one installation in each interesting state to aim at')

  const secrets = () => [
    service.wix.appSecret,
    ...service.wix.issuedCodes.keys(),
    ...service.wix.refreshTokens.keys(),
    ...service.config.cookieSecrets,
  ]
  t.ok(service.wix.issuedCodes.size >= 2 && service.wix.refreshTokens.size >= 2, 'codes and refresh tokens were issued to look for')

  const realIds = [...Object.values(p.ids), ...Object.values(p.instanceIds)]
  const idArb = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...realIds) },
    { weight: 1, arbitrary: fc.uuid() },
    { weight: 2, arbitrary: fc.string({ maxLength: 80 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: unicode.map(encodeURIComponent) },
    { weight: 2, arbitrary: rawBits },
    { weight: 1, arbitrary: longString.map((s) => encodeURIComponent(s).slice(0, 400)) },
    { weight: 1, arbitrary: fc.constantFrom('', ...p.states.authorizing.split('-').slice(0, 1)) },
  )

  /** Which installation a path id names, if any. */
  const named = (id: string) => {
    for (const [k, v] of Object.entries(p.ids)) if (v === id) return k
    for (const [k, v] of Object.entries(p.instanceIds)) if (v === id) return k
    return undefined
  }
  /** Authorised POSTs on a real installation that must not change anything, by its state. */
  const NO_OP: Record<string, string[]> = {
    finish: ['authorizing', 'finished', 'cancelled'],
    retry: ['authorizing', 'setup', 'finished', 'cancelled'],
    cancel: ['setup', 'finished', 'cancelled'],
    'access-token': ['authorizing', 'cancelled'],
  }

  const anyCookie = sometimes(
    fc.oneof(
      headerValue,
      fc.record({ name: fc.constantFrom(`wix_install_state_${p.ids.authorizing}`, `wix_install_flow_${p.ids.setup}`, `wix_install_flow_${p.ids.finished}`, 'wix_install_state', 'wix_install_flow'), value: fc.oneof(headerValue, fc.constantFrom(p.states.authorizing, `${p.states.authorizing}.forged`, p.ids.setup, `${p.ids.setup}.${'A'.repeat(43)}`, p.cookies.setupFlow, p.cookies.finishedFlow)) })
        .map(({ name, value }) => `${name}=${value}`),
    ),
    1,
  )

  /** A generic request for a route: random path params, query, headers and body. */
  function requestArb(route: { method: string; url: string }): fc.Arbitrary<Req> {
    const action = route.url.match(/\/:id\/([a-z-]+)$/)?.[1]
    const queryKeys: Record<string, string[]> = {
      '/api/installations': ['state', 'reason', 'instanceId', 'createdFrom', 'createdTo', 'updatedFrom', 'updatedTo', 'limit', 'cursor'],
      '/wix/app-url': ['token'],
      '/': ['instanceId'],
    }
    const listValues: Record<string, fc.Arbitrary<Value>> = {
      state: encoded(fc.oneof(fc.constantFrom('Finished', 'Authorizing', 'SetupIncomplete', 'finished', 'Nope'), fc.string({ maxLength: 50 }))),
      reason: encoded(fc.oneof(fc.constantFrom('cancelled', 'exchange_refused'), fc.string({ maxLength: 50 }))),
      instanceId: encoded(fc.oneof(fc.constantFrom(...realIds), fc.string({ maxLength: 70 }))),
      limit: encoded(fc.oneof(fc.integer({ min: -5, max: 300 }).map(String), fc.constantFrom('1.5', '1e2', ' 5', '0x10', '', 'Infinity'))),
      cursor: encoded(fc.oneof(
        fc.string({ maxLength: 250 }),
        fc.tuple(dateText, fc.oneof(fc.uuid(), fc.stringMatching(/^[0-9a-f-]{36}$/), fc.string())).map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')),
        fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v) ?? '').toString('base64url')),
      )),
      ...Object.fromEntries(['createdFrom', 'createdTo', 'updatedFrom', 'updatedTo'].map((k) => [k, encoded(dateText)])),
    }
    const path = fc.record({ id: idArb, rest: fc.oneof(rawBits, fc.string({ maxLength: 30 }).map(encodeURIComponent), fc.constantFrom('../../package.json', '..%2f..%2fpackage.json', 'index.html', 'swagger-ui.css', '%2e%2e/%2e%2e/.env')) })
      .map(({ id, rest }) => ({ id, path: route.url.replace(':id', id).replace('*', rest) }))
    return fc
      .record({
        path,
        query: queryArb(queryKeys[route.url] ?? [], route.url === '/api/installations' ? listValues : {}),
        auth: authArb,
        headers: commonHeaders(anyCookie),
        contentType,
        body: route.method === 'POST' ? body : fc.constant(undefined),
      })
      .map(({ path, query, auth, headers, contentType, body }): Req => {
        const real = auth?.trim() === REAL_AUTH
        const target = named(path.id)
        // Authorised, well-formed calls that change an installation are the last subtest's business.
        const mayChange = route.method === 'POST' && real && action !== undefined && !(target === undefined || NO_OP[action]?.includes(target))
        return {
          method: route.method,
          path: `${path.path}${query.length ? `?${queryString(query)}` : ''}`,
          headers: definedOnly({ ...headers, authorization: auth, 'content-type': body === undefined ? undefined : contentType }),
          body,
          mayChange,
          mayStart: route.url === '/wix/app-url' || route.url === '/wix/install',
        }
      })
  }

  /** The Redirect URL: code/state/instanceId/error combinations, real and forged states and cookies. */
  function redirectArb(): fc.Arbitrary<Req> {
    const stateValue = encoded(fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(p.states.authorizing, p.states.setup, p.states.finished) },
      // Well-shaped forgeries: an unknown installation, or a real one with a guessed random part.
      { weight: 1, arbitrary: fc.tuple(fc.oneof(fc.uuid({ version: 4 }), fc.constantFrom(...Object.values(p.ids))), fc.stringMatching(/^[A-Za-z0-9_-]{43}$/)).map(([id, random]) => `${id}.${random}`) },
      { weight: 1, arbitrary: fc.constantFrom(`${p.states.authorizing} `, p.states.authorizing.slice(1), `${p.states.authorizing}=`) },
    ))
    const values: Record<string, fc.Arbitrary<Value>> = {
      state: fc.oneof({ weight: 4, arbitrary: stateValue }, { weight: 1, arbitrary: valueArb() }),
      code: fc.oneof(encoded(fc.constantFrom(...service.wix.issuedCodes.keys())), encoded(fc.string({ minLength: 1, maxLength: 60 })), valueArb()),
      instanceId: fc.oneof(encoded(fc.uuid()), encoded(fc.constantFrom(...Object.values(p.instanceIds))), valueArb()),
      error: fc.oneof(encoded(fc.constantFrom('access_denied', 'invalid_scope', '')), valueArb()),
      error_description: valueArb(['The user cancelled']),
    }
    // Well-formed, as Wix sends them: only the state and the cookie decide.
    const good = {
      state: stateValue,
      code: encoded(fc.oneof(fc.constantFrom(...service.wix.issuedCodes.keys()), fc.string({ minLength: 1, maxLength: 60 }))),
      instanceId: encoded(fc.oneof(fc.uuid({ version: 4 }), fc.constantFrom(...Object.values(p.instanceIds)))),
      error: encoded(fc.constantFrom('access_denied', 'invalid_scope')),
    }
    // Each begun install has its own state cookie, named after its installation.
    const authorizingCookie = `wix_install_state_${p.ids.authorizing}`
    const setupCookie = `wix_install_state_${p.ids.setup}`
    const cookieArb = fc.oneof(
      fc.constant(undefined),
      fc.constant(`${authorizingCookie}=${p.cookies.authorizingState}`),
      fc.constant(`${setupCookie}=${p.cookies.setupState}`),
      fc.constant(`${authorizingCookie}=${p.cookies.setupState}`),
      fc.constantFrom(p.states.authorizing, `${p.states.authorizing}.${'A'.repeat(43)}`, `s:${p.states.authorizing}`, p.cookies.setupFlow, '')
        .map((v) => `${authorizingCookie}=${v}`),
      headerValue.map((v) => `${authorizingCookie}=${v}`),
      headerValue.map((v) => `wix_install_state=${v}`),
      headerValue,
    )
    const keys = ['state', 'code', 'instanceId', 'error', 'error_description']
    // A replayed callback: the spent state with its own (valid, signed) cookie, or a state swapped in.
    const replay = fc
      .record({
        state: fc.constantFrom(p.states.setup, p.states.setup, p.states.authorizing, p.states.finished),
        rest: fc.oneof(
          fc.tuple(good.code, good.instanceId).map(([code, instanceId]) => [{ key: 'code', value: code }, { key: 'instanceId', value: instanceId }]),
          good.error.map((error) => [{ key: 'error', value: error }]),
        ),
      })
      .map(({ state, rest }): Req => ({
        method: 'GET',
        path: `/wix/redirect?${queryString([{ key: 'state', value: { value: state, raw: false } }, ...rest])}`,
        headers: { cookie: `wix_install_state_${p.ids.setup}=${p.cookies.setupState}` },
      }))
    const random = fc
      .record({
        // Mostly one of each, as Wix sends them; sometimes missing, repeated or joined by strangers.
        query: fc.oneof(
          { weight: 3, arbitrary: fc.tuple(good.state, good.code, good.instanceId).map((q) => q.map((p, i) => ({ key: keys[i]!, value: p }))) },
          { weight: 2, arbitrary: fc.tuple(good.state, good.error).map(([state, error]) => [{ key: 'state', value: state }, { key: 'error', value: error }]) },
          { weight: 3, arbitrary: fc.tuple(
            fc.subarray(keys, { minLength: 0 }).chain((ks) => fc.tuple(...ks.map((key) => values[key]!.map((value) => ({ key, value }))))),
            queryArb(keys, values),
          ).map(([own, extra]) => [...own, ...extra]) },
        ),
        headers: commonHeaders(cookieArb),
      })
      .map(({ query, headers }): Req => {
        const live = headers.cookie === `${authorizingCookie}=${p.cookies.authorizingState}`
        return {
          method: 'GET',
          path: `/wix/redirect${query.length ? `?${queryString(query)}` : ''}`,
          headers: definedOnly(headers),
          // The live cookie with its own state and a well-formed query is a real callback.
          mayChange: live && mightBeAccepted(query, p.states.authorizing),
        }
      })
    return fc.oneof({ weight: 1, arbitrary: replay }, { weight: 3, arbitrary: random })
  }

  async function send(req: Req) {
    const res = await client.request({ method: req.method as 'GET', path: req.path, headers: req.headers, body: req.body })
    const text = await res.body.text()
    return { status: res.statusCode, headers: res.headers, text }
  }

  const describeReq = (req: Req) =>
    `${req.method} ${req.path.slice(0, 300)}${req.path.length > 300 ? '…' : ''} headers=${JSON.stringify(req.headers).slice(0, 400)} body=${req.body === undefined ? '-' : `${req.body.length} bytes`}`

  /** The property for one request: no 5xx, no secret, nothing changed. */
  async function check(req: Req) {
    const before = await fingerprint(service)
    const res = await send(req)
    if (res.status >= 500) throw new Error(`${res.status} for ${describeReq(req)}: ${res.text.slice(0, 300)}`)
    const sent = req.path + JSON.stringify(req.headers) + String(req.body ?? '')
    const answered = res.text + JSON.stringify(res.headers)
    for (const secret of secrets()) {
      if (answered.includes(secret) && !sent.includes(secret)) throw new Error(`a secret (${secret.slice(0, 6)}…) in the answer to ${describeReq(req)}`)
    }
    const changed = unchanged(before, await fingerprint(service), { mayStart: !!req.mayStart && res.status === 302 })
    if (changed) throw new Error(`${changed}, after ${res.status} for ${describeReq(req)}`)
    return res
  }

  const routes = service.app.routeList
  t.ok(routes.length >= 15, `${routes.length} routes registered`)
  t.notOk(routes.some((r) => r.url.startsWith('/_sandbox')), 'no sandbox routes outside sandbox mode')
  const byRoute = new Map<string, number[]>()
  let total = 0
  const started = Date.now()
  for (const route of routes) {
    const name = `${route.method} ${route.url}`
    const statuses: number[] = []
    const arb = route.url === '/wix/redirect' ? fc.oneof(redirectArb(), requestArb(route)) : requestArb(route)
    const runs = route.url === '/wix/redirect' || route.url.startsWith('/api/installations') ? RUNS * 6 : RUNS
    try {
      await fc.assert(
        fc.asyncProperty(arb, async (req) => {
          fc.pre(!req.mayChange)
          statuses.push((await check(req)).status)
        }),
        { numRuns: runs, seed },
      )
      t.pass(`${name}: ${statuses.length} fuzzed requests, no 5xx, no secret, nothing changed (statuses ${[...new Set(statuses)].sort().join(', ')})`)
    } catch (err) {
      t.fail(`${name}: ${(err as Error).message}`)
    }
    byRoute.set(name, statuses)
    total += statuses.length
  }
  t.comment(`${total} requests on ${routes.length} routes in ${Date.now() - started} ms`)
  // A generator that only ever hits the auth wall would pass everything above: prove it gets through.
  const through = (name: string, ok: (s: number) => boolean) => (byRoute.get(name) ?? []).some(ok)
  t.ok(through('GET /api/installations/:id', (s) => s === 200), 'real installations were read with the real token')
  t.ok(through('GET /api/installations', (s) => s === 200) && through('GET /api/installations', (s) => s === 400), 'the list answered pages and named 400s')
  t.ok(through('POST /api/installations/:id/finish', (s) => s === 409), 'finish reached its state check')
  t.ok(through('GET /wix/redirect', (s) => s === 409) && through('GET /wix/redirect', (s) => s === 403), 'the Redirect URL reached its replay and mismatch checks')
  t.ok(through('GET /wix/app-url', (s) => s === 302), 'the App URL started installations')
})

/**
 * Whether the Redirect URL might accept this query for the live state (a real callback or decline).
 * Conservative: anything it might accept counts, so only sure rejections are fuzzed with the live cookie.
 */
function mightBeAccepted(query: Pair[], liveState: string): boolean {
  const all = (key: string) => query.filter((p) => p.key === key)
  for (const key of ['state', 'code', 'instanceId', 'error', 'error_description']) if (all(key).length > 1) return false
  const one = (key: string) => all(key)[0]?.value
  const known = (v: Value | undefined, ok: (s: string) => boolean) => !v || v.raw || ok(v.value)
  const state = one('state')
  if (!state || !known(state, (s) => s === liveState)) return false
  if (!known(one('error_description'), (s) => s.length <= 1_000)) return false
  const error = one('error')
  if (error) return known(error, (s) => s.length >= 1 && s.length <= 200)
  const code = one('code')
  const instanceId = one('instanceId')
  if (!code || !instanceId) return false
  return known(code, (s) => s.length >= 1 && s.length <= 2_048) && known(instanceId, (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s))
}
