import { readFileSync } from 'node:fs'
import { isDeepStrictEqual } from 'node:util'
import type { Sql } from 'postgres'
import { replayInstallation } from '../src/inspector/replay.ts'
import type { Observations } from './driver.ts'

export interface Check {
  name: string
  passed: boolean
  detail: string
}

const STABLE = ['SetupIncomplete.waiting', 'Finished', 'ExchangeFailed', 'CodeExpired', 'ConsentAbandoned', 'Cancelled', 'Uninstalled', 'ReinstallRequired']

/** The suite's verdict, from the database, the fake Wix's own counts and what the driver saw. */
export async function runChecks(sql: Sql, o: {
  exchanges: Record<string, number[]>
  secrets: string[]
  seen: Observations
  outage: { from: number; to: number }
  logFile: string
}) {
  const checks: Check[] = []
  const check = (name: string, passed: boolean, detail: string) => checks.push({ name, passed, detail })

  const twice = Object.entries(o.exchanges).filter(([, statuses]) => statuses.filter((s) => s === 200).length > 1)
  const attempts = Object.values(o.exchanges).reduce((n, s) => n + s.length, 0)
  check('no code exchanged more than once', twice.length === 0,
    `${Object.keys(o.exchanges).length} codes, ${attempts} exchange attempts, ${twice.length} codes exchanged twice`)

  const rows = await sql<{ id: string; state_path: string; live_jobs: number }[]>`
    select w.id,
           coalesce(w.state || '.' || (w.snapshot -> 'value' ->> w.state), w.state) as state_path,
           (select count(*)::int from jobs j where j.workflow_id = w.id and j.status in ('pending', 'running')) as live_jobs
    from workflows w`
  const states: Record<string, number> = {}
  for (const r of rows) states[r.state_path] = (states[r.state_path] ?? 0) + 1
  const stuck = rows.filter((r) => !STABLE.includes(r.state_path) && r.live_jobs === 0)
  check('no installation stuck without something scheduled to move it', stuck.length === 0,
    `${rows.length} installations; ${stuck.length} stuck${stuck.length ? `: ${stuck.slice(0, 5).map((s) => `${s.id} ${s.state_path}`).join(', ')}` : ''}`)

  let mismatched = 0
  const examples: string[] = []
  for (const r of rows) {
    const replay = await replayInstallation(sql, r.id)
    const [stored] = await sql<{ snapshot: { value: unknown; context: { failure: unknown } } }[]>`select snapshot from workflows where id = ${r.id}`
    const last = replay!.steps.at(-1)!.snapshot
    if (!isDeepStrictEqual(last.value, stored!.snapshot.value) || !isDeepStrictEqual(last.context.failure, stored!.snapshot.context.failure)) {
      mismatched++
      examples.push(`${r.id}: replayed ${JSON.stringify([last.value, last.context.failure])}, stored ${JSON.stringify([stored!.snapshot.value, stored!.snapshot.context.failure])}`)
    }
  }
  check('every stored history replays through the machine to its stored state', mismatched === 0, `${rows.length} replayed, ${mismatched} differ${examples.length ? `: ${examples.slice(0, 3).join('; ')}` : ''}`)

  const margin = 3_000
  const outside = o.seen.responses.filter((r) => r.status >= 500 && (r.at < o.outage.from || r.at > o.outage.to + margin))
  const during = o.seen.responses.filter((r) => r.status >= 500 && r.at >= o.outage.from && r.at <= o.outage.to + margin)
  check('no 5xx outside the database outage', outside.length === 0,
    `${o.seen.responses.length} answers; 5xx during the outage: ${during.length} (${[...new Set(during.map((r) => r.status))].join(', ') || 'none'}); outside: ${outside.length}${outside.length ? ` (${outside.slice(0, 5).map((r) => `${r.status} ${r.route}`).join(', ')})` : ''}`)

  const log = readFileSync(o.logFile, 'utf8')
  const leaked = [...o.secrets, ...o.seen.states].filter((s) => s.length >= 16 && log.includes(s))
  check('no secret in any log line', leaked.length === 0,
    `${log.split('\n').length} log lines scanned for ${o.secrets.length + o.seen.states.length} secrets; ${leaked.length} found`)
  const failures = await sql<{ reason: string; injected: number; spent: number; n: number }[]>`
    select reason, count(*)::int as n,
           count(*) filter (where snapshot -> 'context' -> 'failure' ->> 'detail' like '%Injected failure%')::int as injected,
           count(*) filter (where snapshot -> 'context' -> 'failure' ->> 'detail' like '%already used%')::int as spent
    from workflows where reason is not null group by reason`
  return { checks, states, failures }
}
