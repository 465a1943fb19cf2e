import { readFileSync } from 'node:fs'
import { isDeepStrictEqual } from 'node:util'
import type { Sql } from 'postgres'
import { replayInstallation } from '../src/inspector/replay.ts'
import type { Observations } from './driver.ts'
import type { ChaosReport } from './fake-wix-process.ts'
import type { UnexpectedExit } from './servers.ts'

export interface Check {
  name: string
  passed: boolean
  detail: string
}

const FAILED = ['ExchangeFailed', 'CodeExpired', 'ConsentAbandoned', 'Cancelled', 'Uninstalled', 'ReinstallRequired']
/** Where an installation rests until someone acts: nothing needs to be scheduled for it. */
const STABLE = ['SetupIncomplete.waiting', 'Finished', ...FAILED]
/** States running an effect: only a live effect job moves them on (their timers are backstops). */
const NEEDS_EFFECT = ['CodeReceived', 'SetupIncomplete.finishing']
/** States waiting for the browser: their timer moves them on if it never comes back. */
const NEEDS_TIMER = ['AppUrlHit', 'Authorizing', 'Tokened']
const HOLDS_TOKENS = ['Tokened', 'SetupIncomplete', 'Finished']

/** A failure for a code Wix had already spent (a killed process spent it before storing the tokens). */
const SPENT = /already used|spent by a process that died/

/** Secrets in the shape the fake Wix mints them, so even one it did not report is caught. */
const SECRET_SHAPES = /OAUTH2\.(code|R|A)\.[\w-]{8}/

/** A few of the installations a check names, with where they stand and why: enough to start from. */
const someOf = (rows: { id: string; state_path: string; detail: string | null }[]) =>
  rows.length ? `: ${rows.slice(0, 3).map((r) => `${r.id} ${r.state_path}${r.detail ? ` (${r.detail})` : ''}`).join('; ')}` : ''

/** The suite's verdict, from the database, the fake Wix's own counts and what the driver saw. */
export async function runChecks(sql: Sql, o: {
  wix: ChaosReport
  secrets: string[]
  seen: Observations
  outage: { from: number; to: number }
  logFile: string
  unexpectedExits: UnexpectedExit[]
}) {
  const checks: Check[] = []
  const check = (name: string, passed: boolean, detail: string) => checks.push({ name, passed, detail })
  const exchanges = Object.entries(o.wix.exchanges)

  const twice = exchanges.filter(([, e]) => e.statuses.filter((s) => s === 200).length > 1)
  const attempts = exchanges.reduce((n, [, e]) => n + e.statuses.length, 0)
  const afterSpent = exchanges.filter(([, e]) => e.statuses.indexOf(200) >= 0 && e.statuses.indexOf(200) < e.statuses.length - 1)
  const toNobody = exchanges.reduce((n, [, e]) => n + e.answeredToNobody, 0)
  check('no code exchanged more than once', twice.length === 0,
    `${exchanges.length} codes, ${attempts} exchange attempts at Wix, ${twice.length} codes exchanged twice ` +
    `(${afterSpent.length} codes sent again after Wix had answered 200, ${toNobody} of those 200s reached a caller that was gone)`)

  const rows = await sql<{ id: string; key: string | null; state: string; state_path: string; reason: string; detail: string | null; detours: number; effects: number; timers: number }[]>`
    -- An installation Wix never confirmed is keyed by its claim (claim:<instance>), or has no key:
    -- the instance it claimed stands in.
    select w.id, coalesce(substring(w.key from '^claim:(.*)$'), w.key, w.snapshot -> 'context' ->> 'claimedInstanceId') as key, w.state, w.reason,
           coalesce(w.state || '.' || (w.snapshot -> 'value' ->> w.state), w.state) as state_path,
           w.snapshot -> 'context' -> 'failure' ->> 'detail' as detail,
           coalesce((w.snapshot -> 'context' ->> 'detours')::int, 0) as detours,
           (select count(*)::int from wix_engine.live_jobs j where j.workflow_id = w.id and j.kind = 'effect') as effects,
           (select count(*)::int from wix_engine.jobs j where j.workflow_id = w.id and j.kind = 'timer' and j.status = 'pending' and j.run_at > now())
             + (select count(*)::int from jsonb_array_elements(w.timers) e where (e->>'run_at')::timestamptz > now()) as timers
    from wix_engine.workflows w where w.machine = 'installation'`
  const states: Record<string, number> = {}
  for (const r of rows) states[r.state_path] = (states[r.state_path] ?? 0) + 1
  const stuck = rows.filter((r) => !STABLE.includes(r.state_path) &&
    !(NEEDS_EFFECT.includes(r.state_path) && r.effects > 0) && !(NEEDS_TIMER.includes(r.state_path) && r.timers > 0))
  const onTimer = rows.filter((r) => NEEDS_TIMER.includes(r.state_path) && r.timers > 0)
  check('no installation stuck without something scheduled to move it', stuck.length === 0,
    `${rows.length} installations; ${rows.length - stuck.length - onTimer.length} at rest, ${onTimer.length} waiting on their timer for a browser that never came back, ` +
    `${stuck.length} stuck${stuck.length ? `: ${stuck.slice(0, 5).map((s) => `${s.id} ${s.state_path} (effects ${s.effects}, timers ${s.timers})`).join(', ')}` : ''}`)

  // Wix's side of the story must match ours: tokens only from a code Wix accepted, and every code
  // Wix accepted either gave its installation tokens or was spent by a run that died before storing
  // them (the installation then failed on it, or went back to Wix for a new one).
  const accepted = new Set(exchanges.filter(([, e]) => e.statuses.includes(200)).map(([, e]) => e.instanceId))
  // An instance may have several installations (a start retried after its answer was lost leaves one behind).
  const byKey = new Map<string, (typeof rows)[number][]>()
  for (const r of rows) if (r.key) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r])
  const tokensWithoutExchange = rows.filter((r) => HOLDS_TOKENS.includes(r.state) && !accepted.has(r.key))
  const spent = (r: { state: string; detail: string | null }) => r.state === 'ExchangeFailed' && SPENT.test(r.detail ?? '')
  const spentWithoutExchange = rows.filter((r) => spent(r) && !accepted.has(r.key))
  // Sent back to Wix for a new code: the spent code is accounted for by the detour, whatever
  // became of the new one (an injected refusal of it fails the install like any refused code).
  const detoured = (r: { detours: number }) => r.detours > 0
  const lost = [...accepted].filter((k) => {
    const found = k ? byKey.get(k) ?? [] : []
    return !found.some((r) => HOLDS_TOKENS.includes(r.state) || r.state === 'ReinstallRequired' || spent(r) || detoured(r))
  })
  const finishedWithoutBiEvent = rows.filter((r) => r.state === 'Finished' && !o.wix.biEvents[r.key ?? ''])
  check("the database agrees with Wix's own counts",
    tokensWithoutExchange.length + spentWithoutExchange.length + lost.length + finishedWithoutBiEvent.length === 0,
    `Wix accepted ${accepted.size} codes and ${Object.values(o.wix.biEvents).reduce((a, b) => a + b, 0)} bi-events for ${Object.keys(o.wix.biEvents).length} instances; ` +
    `${tokensWithoutExchange.length} installations hold tokens Wix never issued, ${lost.length} accepted codes match no installation, ` +
    `${spentWithoutExchange.length} "already used" failures for a code Wix never accepted, ${finishedWithoutBiEvent.length} Finished without a bi-event` +
    someOf([...tokensWithoutExchange, ...spentWithoutExchange, ...lost.map((k) => byKey.get(k!)?.[0] ?? { id: `instance ${k}`, state_path: 'none', detail: null }), ...finishedWithoutBiEvent]))

  let mismatched = 0
  const examples: string[] = []
  for (const r of rows) {
    const replay = await replayInstallation(sql, r.id)
    const [stored] = await sql<{ snapshot: { value: unknown; context: { failure: unknown } } }[]>`select snapshot from wix_engine.workflows where id = ${r.id}`
    const last = replay!.steps.at(-1)!.snapshot
    if (!isDeepStrictEqual(last.value, stored!.snapshot.value) || !isDeepStrictEqual(last.context.failure, stored!.snapshot.context.failure)) {
      mismatched++
      examples.push(`${r.id}: replayed ${JSON.stringify([last.value, last.context.failure])}, stored ${JSON.stringify([stored!.snapshot.value, stored!.snapshot.context.failure])}`)
    }
  }
  check('every stored history replays through the machine to its stored state', mismatched === 0, `${rows.length} replayed, ${mismatched} differ${examples.length ? `: ${examples.slice(0, 3).join('; ')}` : ''}`)

  // Connections cut by the restart surface for a moment after it: allow 3 s for the pools.
  const margin = 3_000
  const inOutage = (at: number) => at >= o.outage.from && at <= o.outage.to + margin
  const outside = o.seen.responses.filter((r) => r.status >= 500 && !inOutage(r.at))
  const during = o.seen.responses.filter((r) => r.status >= 500 && inOutage(r.at))
  check('no 5xx outside the database outage', outside.length === 0 && during.every((r) => r.status === 503),
    `${o.seen.responses.length} answers; 5xx during the outage: ${during.length} (${[...new Set(during.map((r) => r.status))].join(', ') || 'none'}); outside: ${outside.length}${outside.length ? ` (${outside.slice(0, 5).map((r) => `${r.status} ${r.route}`).join(', ')})` : ''}`)

  const log = readFileSync(o.logFile, 'utf8')
  const lines = log.split('\n')
  const known = [...new Set([...o.secrets, ...o.wix.secrets, ...o.seen.states])].filter((s) => s.length >= 16)
  const leaked = known.filter((s) => log.includes(s))
  const shaped = lines.filter((l) => SECRET_SHAPES.test(l))
  check('no secret in any log line', leaked.length === 0 && shaped.length === 0,
    `${lines.length} log lines scanned for ${known.length} secrets and for anything shaped like a Wix code or token; ${leaked.length + shaped.length} found` +
    `${shaped.length ? `: ${shaped.slice(0, 2).map((l) => l.slice(0, 200)).join(' | ')}` : ''}`)

  // A browser that waited on is sent back to Wix for a new code: none of theirs may end on a spent code.
  const waited = new Set(o.seen.waited)
  const lostWhileWaiting = rows.filter((r) => waited.has(r.id) && spent(r))
  check('no install lost while its browser waited', lostWhileWaiting.length === 0,
    `${waited.size} browsers waited on the Redirect URL, ${o.seen.detours} sent back through Wix's installer for a new code; ` +
    `${lostWhileWaiting.length} installs lost while their browser waited${lostWhileWaiting.length ? `: ${lostWhileWaiting.slice(0, 5).map((r) => r.id).join(', ')}` : ''}`)

  check('no server process died on its own', o.unexpectedExits.length === 0,
    `${o.unexpectedExits.length} exits the suite did not cause${o.unexpectedExits.length ? `: ${o.unexpectedExits.map((e) => `port ${e.port} code ${e.code} signal ${e.signal}`).join(', ')}` : ''}`)

  const failures = await sql<{ reason: string; injected: number; spent: number; n: number }[]>`
    select reason, count(*)::int as n,
           count(*) filter (where snapshot -> 'context' -> 'failure' ->> 'detail' like '%Injected failure%')::int as injected,
           count(*) filter (where snapshot -> 'context' -> 'failure' ->> 'detail' ~ ${SPENT.source})::int as spent
    from wix_engine.workflows where reason is not null group by reason`
  return { checks, states, failures, lostWhileWaiting: lostWhileWaiting.length }
}
