import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import postgres from 'postgres'
import { Agent, request } from 'undici'
import { encodeCursor } from '../src/installation/admin.ts'
import { connect } from '../src/db/connect.ts'
import { migrate } from '../src/db/migrate.ts'
import { freePort, round, sleep, startProcess, summary } from './lib.ts'

/**
 * The admin list at scale: seed N installations with generate_series (straight SQL, not the
 * API), then time GET /api/installations with each filter, combinations, and deep cursors.
 */
export interface ListOptions {
  serverUrl: string
  rows: number
  keep: boolean
}

const TARGET_P95_MS = 20
const SAMPLES = 100
const withDatabase = (url: string, name: string) => {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

/** A realistic spread: most finished, some waiting for setup, a tail of each failure. */
const SEED = (n: number) => `
insert into wix_engine.workflows (id, machine, machine_version, key, state, reason, snapshot, version, created_at, updated_at)
select id, 'installation', 1, key, state, reason,
       jsonb_build_object('value', value, 'status', status, 'context', jsonb_build_object(
         'id', id, 'origin', origin, 'stateHash', encode(sha256(id::text::bytea), 'hex'), 'closeWindow', false,
         'autoFinish', false, 'consentTimeoutMs', 1800000, 'codeTtlMs', 600000, 'browserReturnTimeoutMs', 900000,
         'instanceId', key, 'lastError', null,
         'failure', case when reason is null then null else jsonb_build_object('reason', reason, 'detail', 'seeded by the benchmark') end)),
       version, created_at, created_at + random() * interval '2 hours'
from (
  select gen_random_uuid() as id, p.*,
         case when p.keyed then md5('instance-' || (i % ${Math.round(n * 0.9)}))::uuid::text end as key,
         case when i % 10 = 0 then 'platform' else 'app-url' end as origin,
         now() - (i::float8 / ${n}) * interval '730 days' - random() * interval '1 hour' as created_at
  from generate_series(1, ${n}) as i
  cross join lateral (
    select * from (values
      (0, 62, 'Finished', null, '"Finished"'::jsonb, 'done', 7, true),
      (62, 75, 'SetupIncomplete', null, '{"SetupIncomplete":"waiting"}', 'active', 5, true),
      (75, 78, 'Authorizing', null, '"Authorizing"', 'active', 2, false),
      (78, 79, 'CodeReceived', null, '"CodeReceived"', 'active', 3, true),
      (79, 84, 'ExchangeFailed', 'exchange_refused', '"ExchangeFailed"', 'done', 4, true),
      (84, 85, 'ExchangeFailed', 'exchange_unavailable', '"ExchangeFailed"', 'done', 4, true),
      (85, 90, 'ConsentAbandoned', 'consent_abandoned', '"ConsentAbandoned"', 'done', 3, false),
      (90, 93, 'ConsentAbandoned', 'consent_declined', '"ConsentAbandoned"', 'done', 3, false),
      (93, 94, 'CodeExpired', 'code_expired', '"CodeExpired"', 'done', 4, true),
      (94, 96, 'ReinstallRequired', 'reinstall_required', '"ReinstallRequired"', 'done', 6, true),
      (96, 99, 'Uninstalled', 'uninstalled', '"Uninstalled"', 'done', 8, true),
      (99, 100, 'Cancelled', 'cancelled', '"Cancelled"', 'done', 3, false)
    ) as v(lo, hi, state, reason, value, status, version, keyed)
    where (i::bigint * 7919) % 100 >= v.lo and (i::bigint * 7919) % 100 < v.hi
  ) as p
) as s`

/** The list query as src/installation/queries.ts writes it, as text, to EXPLAIN a slow case. */
function listSql(q: URLSearchParams): { text: string; params: unknown[] } {
  const params: unknown[] = []
  const p = (v: unknown) => (params.push(v), `$${params.length}`)
  const where = [`machine = 'installation'`]
  if (q.get('state')) where.push(`state = ${p(q.get('state'))}`)
  if (q.get('reason')) where.push(`reason = ${p(q.get('reason'))}`)
  if (q.get('instanceId')) where.push(`key = ${p(q.get('instanceId'))}`)
  if (q.get('createdFrom')) where.push(`created_at >= ${p(q.get('createdFrom'))}::timestamptz`)
  if (q.get('createdTo')) where.push(`created_at < ${p(q.get('createdTo'))}::timestamptz`)
  if (q.get('updatedFrom')) where.push(`updated_at >= ${p(q.get('updatedFrom'))}::timestamptz`)
  if (q.get('updatedTo')) where.push(`updated_at < ${p(q.get('updatedTo'))}::timestamptz`)
  // With a created-at filter the list is newest-created first, else newest-updated first.
  const created = Boolean(q.get('createdFrom') || q.get('createdTo'))
  const column = created ? 'created_at' : 'updated_at'
  const end = q.get(created ? 'createdTo' : 'updatedTo')
  const cursor = q.get('cursor')
  if (cursor) {
    const [, at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string, string]
    // As the query drops a cursor at or past the window's end.
    if (!(end && new Date(at) >= new Date(end))) where.push(`(${column}, id) < (${p(at)}::timestamptz, ${p(id)}::uuid)`)
  }
  return { text: `select * from wix_engine.workflows where ${where.join(' and ')} order by ${column} desc, id desc limit ${Number(q.get('limit') ?? 50) + 1}`, params }
}

export async function runListMode(o: ListOptions, log: (s: string) => void) {
  const admin = postgres(withDatabase(o.serverUrl, 'postgres'), { max: 1, onnotice: () => {} })
  const name = `wie_bench_list_${randomBytes(4).toString('hex')}`
  await admin.unsafe(`create database ${name}`)
  const url = withDatabase(o.serverUrl, name)
  // The seed and its index builds take minutes on a loaded host: past the service's statement timeout.
  const sql = connect(url, { max: 1, statementTimeoutMs: 0 })
  try {
    await migrate(sql)
    // Load first, index after: the same indexes, built once instead of row by row.
    const t0 = performance.now()
    const indexes = await sql<{ indexname: string; indexdef: string }[]>`
      select indexname, indexdef from pg_indexes
      where schemaname = 'wix_engine' and tablename = 'workflows' and indexname <> 'workflows_pkey'`
    for (const i of indexes) await sql.unsafe(`drop index wix_engine.${i.indexname}`)
    await sql.unsafe(`set maintenance_work_mem = '256MB'`)
    await sql.unsafe(SEED(o.rows))
    const loadedMs = performance.now() - t0
    for (const i of indexes) await sql.unsafe(i.indexdef)
    await sql.unsafe('analyze wix_engine.workflows')
    const seedSeconds = round((performance.now() - t0) / 1000, 1)
    const [{ n }] = (await sql`select count(*)::int as n from wix_engine.workflows`) as unknown as [{ n: number }]
    const byState = await sql<{ state: string; n: number }[]>`select state, count(*)::int as n from wix_engine.workflows group by state order by n desc`
    log(`seeded ${n} installations in ${seedSeconds} s (${round(loadedMs / 1000, 1)} s to load, the rest to index and analyze)`)

    const adminToken = randomBytes(24).toString('hex')
    const port = await freePort()
    const server = await startProcess('src/server.ts', {
      DATABASE_URL: url, PUBLIC_URL: `http://127.0.0.1:${port}`, ADMIN_TOKEN: adminToken,
      COOKIE_SECRET: randomBytes(32).toString('hex'), TOKEN_ENCRYPTION_KEY: `k1:${randomBytes(32).toString('base64')}`,
      WIX_APP_ID: 'bench-app', WIX_APP_SECRET: 'bench-secret', WIX_WWW_URL: 'http://127.0.0.1:9', WIX_API_URL: 'http://127.0.0.1:9',
      LOG_LEVEL: 'warn',
      // The seed spans two years of installations: the retention sweep would start deleting its
      // ended ones the moment the service starts, under the very lists being timed.
      RETENTION_ABANDONED_HOURS: '0', RETENTION_FAILED_DAYS: '0', RETENTION_HISTORY_DAYS: '0', RETENTION_WEBHOOK_DAYS: '0',
    }, port, '/healthz')
    const agent = new Agent({ connections: 1 })
    const get = async (qs: URLSearchParams) => {
      const started = performance.now()
      const res = await request(`${server.url}/api/installations?${qs}`, { headers: { authorization: `Bearer ${adminToken}` }, dispatcher: agent })
      const body = (await res.body.json()) as { items: unknown[]; nextCursor: string | null }
      if (res.statusCode !== 200) throw new Error(`list ${qs}: HTTP ${res.statusCode} ${JSON.stringify(body)}`)
      return { ms: performance.now() - started, items: body.items.length, nextCursor: body.nextCursor }
    }

    // Inputs drawn from the data: existing instanceIds, time windows anywhere in the two years.
    const keys = (await sql<{ key: string }[]>`select key from wix_engine.workflows tablesample system (1) where key is not null limit 500`).map((r) => r.key)
    const [span] = await sql<{ lo: Date; hi: Date }[]>`select min(created_at) as lo, max(updated_at) as hi from wix_engine.workflows`
    const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!
    const windowAt = (days: number) => {
      const lo = span!.lo.getTime() + Math.random() * (span!.hi.getTime() - span!.lo.getTime() - days * 864e5)
      return [new Date(lo).toISOString(), new Date(lo + days * 864e5).toISOString()] as const
    }
    const depths = Array.from({ length: 20 }, () => Math.floor(Math.random() * (n - 1000)))
    const deep = await sql<{ updated_at: Date; id: string }[]>`
      select updated_at, id from (
        select updated_at, id, row_number() over (order by updated_at desc, id desc) as rn from wix_engine.workflows where machine = 'installation'
      ) x where rn = any(${depths}::bigint[])`
    const deepCursors = deep.map((r) => encodeCursor('updated', { createdAt: r.updated_at, updatedAt: r.updated_at, id: r.id }))
    const deepFinished = (await sql<{ updated_at: Date; id: string }[]>`
      select updated_at, id from wix_engine.workflows where machine = 'installation' and state = 'Finished'
      order by updated_at, id limit 20 offset 1000`).map((r) => encodeCursor('updated', { createdAt: r.updated_at, updatedAt: r.updated_at, id: r.id }))
    // A created-at filter pages newest-created first: its cursors are positions in that order.
    const deepCreated = (await sql<{ created_at: Date; id: string }[]>`
      select created_at, id from (
        select created_at, id, row_number() over (order by created_at desc, id desc) as rn from wix_engine.workflows where machine = 'installation'
      ) x where rn = any(${depths}::bigint[])`).map((r) => encodeCursor('created', { createdAt: r.created_at, updatedAt: r.created_at, id: r.id }))

    const cases: Record<string, () => URLSearchParams> = {
      'no filter': () => new URLSearchParams(),
      'state=Finished (62%)': () => new URLSearchParams({ state: 'Finished' }),
      'state=Authorizing (3%)': () => new URLSearchParams({ state: 'Authorizing' }),
      'reason=exchange_refused (5%)': () => new URLSearchParams({ reason: 'exchange_refused' }),
      'reason=code_expired (1%)': () => new URLSearchParams({ reason: 'code_expired' }),
      instanceId: () => new URLSearchParams({ instanceId: pick(keys) }),
      'created: 1-day window': () => { const [f, t] = windowAt(1); return new URLSearchParams({ createdFrom: f, createdTo: t }) },
      'created: 30-day window': () => { const [f, t] = windowAt(30); return new URLSearchParams({ createdFrom: f, createdTo: t }) },
      'createdFrom only (last 7 days)': () => new URLSearchParams({ createdFrom: new Date(span!.hi.getTime() - 7 * 864e5).toISOString() }),
      'createdTo only (older than a year)': () => new URLSearchParams({ createdTo: new Date(span!.hi.getTime() - 365 * 864e5).toISOString() }),
      'updated: 1-day window': () => { const [f, t] = windowAt(1); return new URLSearchParams({ updatedFrom: f, updatedTo: t }) },
      'state=Finished + created 1-day window': () => { const [f, t] = windowAt(1); return new URLSearchParams({ state: 'Finished', createdFrom: f, createdTo: t }) },
      'reason=consent_abandoned + updated 30-day window': () => { const [f, t] = windowAt(30); return new URLSearchParams({ reason: 'consent_abandoned', updatedFrom: f, updatedTo: t }) },
      'state=SetupIncomplete + instanceId': () => new URLSearchParams({ state: 'SetupIncomplete', instanceId: pick(keys) }),
      'deep cursor (random depth up to 1M)': () => new URLSearchParams({ cursor: pick(deepCursors) }),
      'deep cursor, limit=200': () => new URLSearchParams({ cursor: pick(deepCursors), limit: '200' }),
      'state=Finished + deep cursor': () => new URLSearchParams({ state: 'Finished', cursor: pick(deepFinished) }),
      'reason=code_expired + deep cursor': () => new URLSearchParams({ reason: 'code_expired', cursor: pick(deepCursors) }),
      'updated 30-day window + deep cursor': () => { const [f, t] = windowAt(30); return new URLSearchParams({ updatedFrom: f, updatedTo: t, cursor: pick(deepCursors) }) },
      'reason=code_expired (1%) + created 30-day window': () => { const [f, t] = windowAt(30); return new URLSearchParams({ reason: 'code_expired', createdFrom: f, createdTo: t }) },
      'created 30-day window + deep cursor': () => { const [f, t] = windowAt(30); return new URLSearchParams({ createdFrom: f, createdTo: t, cursor: pick(deepCreated) }) },
      'createdTo only + deep cursor': () => new URLSearchParams({ createdTo: new Date(span!.hi.getTime() - 365 * 864e5).toISOString(), cursor: pick(deepCreated) }),
    }
    const results: Record<string, { p50: number; p95: number; max: number; meanItems: number; meetsTarget: boolean; explain?: string[] }> = {}
    for (const [label, make] of Object.entries(cases)) {
      for (let i = 0; i < 5; i++) await get(make())
      const ms: number[] = []
      let items = 0
      const slowest = { ms: 0, qs: new URLSearchParams() }
      for (let i = 0; i < SAMPLES; i++) {
        const qs = make()
        const r = await get(qs)
        ms.push(r.ms)
        items += r.items
        if (r.ms > slowest.ms) Object.assign(slowest, { ms: r.ms, qs })
      }
      const s = summary(ms)
      results[label] = { p50: s.p50, p95: s.p95, max: s.max, meanItems: round(items / SAMPLES, 1), meetsTarget: s.p95 < TARGET_P95_MS }
      if (!results[label].meetsTarget) {
        const { text, params } = listSql(slowest.qs)
        const plan = await sql.unsafe(`explain (analyze, buffers) ${text}`, params as never[])
        results[label].explain = plan.map((r) => String(r['QUERY PLAN']))
      }
      log(`list ${label}: p50 ${s.p50} ms, p95 ${s.p95} ms`)
    }

    // Walking: follow nextCursor page after page, as an export would.
    const walk = async (label: string, base: Record<string, string>, pages: number) => {
      const ms: number[] = []
      let cursor: string | null = null
      for (let i = 0; i < pages; i++) {
        const qs = new URLSearchParams({ ...base, limit: '200', ...(cursor && { cursor }) })
        const r = await get(qs)
        ms.push(r.ms)
        cursor = r.nextCursor
        if (!cursor) break
      }
      const s = summary(ms)
      results[label] = { p50: s.p50, p95: s.p95, max: s.max, meanItems: 200, meetsTarget: s.p95 < TARGET_P95_MS }
      log(`list ${label}: p50 ${s.p50} ms, p95 ${s.p95} ms over ${ms.length} pages`)
    }
    await walk('walk 200 pages × 200, no filter', {}, 200)
    await walk('walk 200 pages × 200, state=Finished', { state: 'Finished' }, 200)
    await walk('walk 100 pages × 200, reason=consent_declined', { reason: 'consent_declined' }, 100)
    await walk('walk 200 pages × 200, createdTo older than a year', { createdTo: new Date(span!.hi.getTime() - 365 * 864e5).toISOString() }, 200)

    await server.stop()
    await sleep(200)
    return {
      rows: n, seedSeconds, byState: Object.fromEntries(byState.map((r) => [r.state, r.n])),
      targetP95Ms: TARGET_P95_MS, samplesPerCase: SAMPLES, cases: results,
      indexes: (await sql<{ indexdef: string }[]>`select indexdef from pg_indexes where schemaname = 'wix_engine' and tablename = 'workflows'`).map((r) => r.indexdef),
    }
  } finally {
    await sql.end({ timeout: 1 })
    if (!o.keep) await admin.unsafe(`drop database if exists ${name} with (force)`)
    await admin.end()
  }
}
