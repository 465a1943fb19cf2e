import type { z } from 'zod'
import type { effectAttemptSchema, historyEntrySchema, installationSchema } from '../installation/view.ts'
import { escapeHtml as e } from '../routes/html.ts'
import { eventLabel } from './diagram.ts'
import { postForm, time } from './layout.ts'

type Installation = z.infer<typeof installationSchema>
type HistoryEntry = z.infer<typeof historyEntrySchema>
type Attempt = z.infer<typeof effectAttemptSchema>

export interface Stats {
  installations: Record<string, number>
  failures: Record<string, number>
  jobs: { waiting: number; running: number; oldestWaitingSeconds: number | null }
}

export interface ListFilter { state?: string; reason?: string; q?: string; limit?: string }

const dash = '<span class="muted">—</span>'
const code = (s: string | null | undefined) => (s ? `<code>${e(s)}</code>` : dash)
const link = (i: Pick<Installation, 'id'>) => `<a href="/console/installations/${e(i.id)}">${code(i.id)}</a>`
const row = (cells: string[]) => `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`
const head = (names: string[]) => `<thead><tr>${names.map((n) => `<th scope="col">${n}</th>`).join('')}</tr></thead>`
const terms = (entries: [string, string | number][]) =>
  `<dl>${entries.map(([k, v]) => `<dt>${e(k)}</dt><dd>${v}</dd>`).join('')}</dl>`

function counts(title: string, entries: Record<string, number>) {
  const rows = Object.entries(entries).sort(([a], [b]) => a.localeCompare(b))
  const body = rows.length ? terms(rows) : '<p class="muted">None.</p>'
  return `<section aria-label="${e(title)}"><h3>${e(title)}</h3>${body}</section>`
}

const select = (id: string, name: string, label: string, values: string[], selected?: string) =>
  `<div><label for="${id}">${label}</label><select id="${id}" name="${name}"><option value="">any</option>`
  + values.map((v) => `<option${v === selected ? ' selected' : ''}>${e(v)}</option>`).join('') + '</select></div>'

const strip = (f: ListFilter) => Object.fromEntries(Object.entries(f).filter(([, v]) => v)) as Record<string, string>

export interface ListPage {
  stats: Stats
  states: string[]
  items: Installation[]
  nextCursor: string | null
  filter: ListFilter
}

/**
 * The instance an installation belongs to, as Wix confirmed it; a claim is shown as a claim,
 * never as the site's, and a cloned site says so.
 */
function instanceCell(i: Installation) {
  const instance = i.instanceVerified || !i.claimedInstanceId
    ? code(i.instanceId)
    : `${code(i.claimedInstanceId)} <em class="claim">(${e(i.instanceNote ?? '')})</em>`
  return i.cloned ? `${instance} <span class="muted">(${e(i.cloned)})</span>` : instance
}

/** How an installation began, in words. */
const ORIGINS: Record<string, string> = {
  'app-url': 'the App URL (Wix)',
  platform: "the app's own platform",
  webhook: "Wix's AppInstalled webhook (no redirect flow)",
}

/** The list: counts on top, filters, one page of installations, a link to the next page. */
export function listView(o: ListPage) {
  const { stats, filter } = o
  const reasons = [...new Set([...Object.keys(stats.failures), ...(filter.reason ? [filter.reason] : [])])].sort()
  const oldest = stats.jobs.oldestWaitingSeconds === null ? 'none' : `${stats.jobs.oldestWaitingSeconds} s`
  const jobs = `<section aria-label="Jobs"><h3>Jobs</h3>`
    + `${terms([['waiting', stats.jobs.waiting], ['running', stats.jobs.running], ['oldest wait', oldest]])}</section>`
  const rows = o.items.map((i) =>
    row([link(i), instanceCell(i), e(i.statePath), i.failure ? e(i.failure.reason) : dash, time(i.createdAt),
      time(i.updatedAt)]))
  const nextUrl = o.nextCursor && `/console?${new URLSearchParams({ ...strip(filter), cursor: o.nextCursor })}`
  return `<h1>Installations</h1>
<section class="stats" aria-labelledby="counts"><h2 id="counts" class="stats-title">Counts</h2>
${counts('By state', stats.installations)}${counts('Failures by reason', stats.failures)}${jobs}</section>
<form method="get" action="/console" class="filters" role="search" aria-label="Filter installations">
${select('f-state', 'state', 'State', o.states, filter.state)}
${select('f-reason', 'reason', 'Failure reason', reasons, filter.reason)}
<div><label for="f-q">Instance id or installation id</label>
<input id="f-q" name="q" value="${e(filter.q ?? '')}" size="38" autocomplete="off"></div>
<button type="submit">Show</button> <a href="/console">Clear</a></form>
<table><caption>${o.items.length ? 'Newest first' : 'No installation matches.'}</caption>
${head(['Installation', 'Instance id', 'State', 'Reason', 'Created', 'Updated'])}
<tbody>${rows.join('')}</tbody></table>${nextUrl ? `<p><a rel="next" href="${e(nextUrl)}">Next page</a></p>` : ''}`
}

/** Which admin actions the installation's state allows. */
export interface Actions { finish: boolean; retry: boolean; cancel: boolean }

const ACTION_WORDS = {
  finish: {
    button: 'Finish…',
    confirm: 'Send APP_FINISHED_CONFIGURATION to Wix and mark the installation Finished.',
    yes: 'Yes, finish it',
  },
  retry: {
    button: 'Retry the bi-event…',
    confirm: 'Send APP_FINISHED_CONFIGURATION to Wix again; its last attempt failed.',
    yes: 'Yes, retry',
  },
  cancel: {
    button: 'Cancel…',
    confirm: 'End this installation for good (reason: cancelled). The site owner would have to install again.',
    yes: 'Yes, cancel it',
  },
} as const

/** Each action behind a disclosure that asks to confirm: no click changes anything by accident. */
function actionsView(id: string, csrf: string, actions: Actions) {
  const forms = (Object.keys(ACTION_WORDS) as (keyof Actions)[]).filter((a) => actions[a]).map((a) => {
    const w = ACTION_WORDS[a]
    const button = `<input type="hidden" name="confirm" value="yes">`
      + `<button type="submit"${a === 'cancel' ? ' class="danger"' : ''}>${w.yes}</button>`
    return `<details><summary>${w.button}</summary><p>${e(w.confirm)}</p>`
      + `${postForm(`/console/installations/${id}/${a}`, csrf, button)}</details>`
  })
  if (!forms.length) return '<p class="muted">No action applies in this state.</p>'
  return `<div class="actions">${forms.join('')}</div>`
}

export interface InstallationPage {
  installation: Installation
  history: HistoryEntry[]
  attempts: Attempt[]
  /** Other installations of the same instance id, newest first (this one included). */
  siblings: Installation[]
  diagram: string
  actions: Actions
  csrf: string
  inspect: { enabled: boolean }
  /** Where the site owner starts the installation again (the platform-started install). */
  reinstallUrl: string
}

function factsView(i: Installation, siblings: Installation[], reinstallUrl: string) {
  const facts: [string, string][] = [['State', `<strong>${e(i.statePath)}</strong>`]]
  facts.push(['Instance id', i.instanceId || i.claimedInstanceId ? instanceCell(i) : 'not known yet (before the Redirect URL)'])
  if (i.supersededBy) facts.push(['Superseded by', link({ id: i.supersededBy })])
  const tookOver = siblings.filter((s) => s.supersededBy === i.id)
  if (tookOver.length) {
    facts.push(['Took over', tookOver.map(link).join(', ')
      + ' (started by AppInstalled)'])
  }
  if (i.failure) facts.push(['Failure', `<strong>${e(i.failure.reason)}</strong>: ${e(i.failure.detail)}`])
  // A failed install is recovered by the owner installing again: the link to send them.
  if (i.failure && i.failure.reason !== 'uninstalled') {
    facts.push(['Re-install link', `<a href="${e(reinstallUrl)}">${e(reinstallUrl)}</a> <span class="muted">(send it to the site owner)</span>`])
  }
  if (i.lastError) {
    const id = i.lastError.wixRequestId ? ` (Wix request id ${code(i.lastError.wixRequestId)})` : ''
    facts.push(['Last error', `${code(i.lastError.code)} ${e(i.lastError.message)}${id}`])
  }
  facts.push(['Started from', e(ORIGINS[i.origin] ?? i.origin)])
  if (i.originInstanceId) facts.push(['Cloned site', `${e(i.cloned ?? '')}: a duplicated site, installed without a consent flow`])
  facts.push(['Created', time(i.createdAt)], ['Updated', time(i.updatedAt)], ['Events accepted', String(i.version)])
  return `<dl class="facts">${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`
}

function siblingsView(i: Installation, siblings: Installation[]) {
  if (siblings.length < 2) return ''
  const names = siblings.map((s) => s.id === i.id
    ? `<strong>this one</strong> (${e(s.state)})`
    : `<a href="/console/installations/${e(s.id)}">${e(s.id.slice(0, 8))}</a> (${e(s.state)})`)
  const claims = siblings.some((s) => !s.instanceVerified) ? ' (claims included, each marked)' : ''
  return `<p>Instance ${code(i.instanceId ?? i.claimedInstanceId)} has ${siblings.length} installations${claims}: ${names.join(', ')}.</p>`
}

function historyView(history: HistoryEntry[]) {
  const rows = history.map((h) => {
    const words = h.event !== eventLabel(h.event) ? ` <span class="muted">(${e(eventLabel(h.event))})</span>` : ''
    const move = `${h.from ? e(h.from) : dash} → ${e(h.to)}`
    return row([String(h.seq), `${code(h.event)}${words}`, move, e(h.source), time(h.at)])
  })
  return '<table><caption>Every accepted event, oldest first (the transitions taken)</caption>'
    + `${head(['#', 'Event', 'From → to', 'Source', 'At'])}<tbody>${rows.join('')}</tbody></table>`
}

function attemptsView(attempts: Attempt[]) {
  if (!attempts.length) return '<p class="muted">No effect has finished a run yet.</p>'
  const rows = attempts.map((a) => {
    const status = a.error?.status ? ` (HTTP ${a.error.status})` : ''
    const error = a.error ? `${code(a.error.code)}${status} ${e(a.error.message)}` : dash
    return `<tr><td>${e(a.effect)}</td><td>${a.attempt}</td><td class="outcome-${a.outcome}">${e(a.outcome)}</td>`
      + `<td>${error}</td><td>${code(a.wixRequestId)}</td><td>${a.startedAt ? time(a.startedAt) : dash}</td>`
      + `<td>${time(a.finishedAt)}</td></tr>`
  })
  return "<table><caption>Every run of every effect that failed or succeeded, with Wix's request id when a call"
    + ' failed (a successful run keeps no start time)</caption>'
    + head(['Effect', 'Attempt', 'Outcome', 'Error', 'Wix request id', 'Started', 'Finished'])
    + `<tbody>${rows.join('')}</tbody></table>`
}

/** One installation: what it is, what can be done, its machine drawn, its history and effect attempts. */
export function installationView(p: InstallationPage) {
  const i = p.installation
  const inspect = p.inspect.enabled
    ? postForm(`/console/installations/${i.id}/inspect`, p.csrf,
      '<button type="submit">Replay into the XState inspector</button>')
    : '<p>The XState inspector is off (<code>INSPECT</code> is unset). Start the service with '
      + `<code>INSPECT=true</code> to replay from here, or run <code>npm run inspect -- ${e(i.id)}</code> `
      + 'while it is stopped.</p>'
  const caption = `Now in <strong>${e(i.statePath)}</strong> (marked “now”, with the heaviest border). `
    + 'Solid boxes and heavy arrows are the path this installation took; dashed boxes were never entered.'
  return `<p><a href="/console">← All installations</a></p>
<div data-live="/console/installations/${e(i.id)}/version" data-version="${i.version}" data-state="${e(i.statePath)}">
<h1>Installation ${code(i.id)}</h1>
${factsView(i, p.siblings, p.reinstallUrl)}${siblingsView(i, p.siblings)}
<section aria-labelledby="actions-h"><h2 id="actions-h">Actions</h2>${actionsView(i.id, p.csrf, p.actions)}</section>
<section aria-labelledby="diagram-h"><h2 id="diagram-h">State machine</h2>
<figure>${p.diagram}<figcaption>${caption}</figcaption></figure></section>
<section aria-labelledby="history-h"><h2 id="history-h">History</h2>${historyView(p.history)}</section>
<section aria-labelledby="attempts-h"><h2 id="attempts-h">Effect attempts</h2>${attemptsView(p.attempts)}</section>
</div>
<p id="live-status" class="muted" aria-live="polite">This page follows the installation as it moves.</p>
<section aria-labelledby="inspect-h"><h2 id="inspect-h">XState inspector</h2>${inspect}</section>`
}
