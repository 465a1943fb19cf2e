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

const link = (i: Pick<Installation, 'id'>) => `<a href="/console/installations/${e(i.id)}"><code>${e(i.id)}</code></a>`
const dash = '<span class="muted">—</span>'
const counts = (title: string, entries: Record<string, number>) => {
  const rows = Object.entries(entries).sort(([a], [b]) => a.localeCompare(b))
  return `<section aria-label="${e(title)}"><h3>${e(title)}</h3>${rows.length
    ? `<dl>${rows.map(([k, n]) => `<dt>${e(k)}</dt><dd>${n}</dd>`).join('')}</dl>` : '<p class="muted">None.</p>'}</section>`
}

/** The list: counts on top, filters, one page of installations, a link to the next page. */
export function listView(o: { stats: Stats; states: string[]; items: Installation[]; nextCursor: string | null; filter: ListFilter }) {
  const { stats, filter } = o
  const option = (value: string, selected?: string) => `<option${value === selected ? ' selected' : ''}>${e(value)}</option>`
  const reasons = [...new Set([...Object.keys(stats.failures), ...(filter.reason ? [filter.reason] : [])])].sort()
  const jobs = `<section aria-label="Jobs"><h3>Jobs</h3><dl><dt>waiting</dt><dd>${stats.jobs.waiting}</dd><dt>running</dt><dd>${stats.jobs.running}</dd>`
    + `<dt>oldest wait</dt><dd>${stats.jobs.oldestWaitingSeconds === null ? 'none' : `${stats.jobs.oldestWaitingSeconds} s`}</dd></dl></section>`
  const rows = o.items.map((i) => `<tr><td>${link(i)}</td><td>${i.instanceId ? `<code>${e(i.instanceId)}</code>` : dash}</td>`
    + `<td>${e(i.statePath)}</td><td>${i.failure ? e(i.failure.reason) : dash}</td><td>${time(i.createdAt)}</td><td>${time(i.updatedAt)}</td></tr>`)
  const next = o.nextCursor
    ? `<p><a rel="next" href="/console?${new URLSearchParams({ ...strip(filter), cursor: o.nextCursor })}">Next page</a></p>` : ''
  return `<h1>Installations</h1>
<section class="stats" aria-labelledby="counts"><h2 id="counts" class="stats-title">Counts</h2>
${counts('By state', stats.installations)}${counts('Failures by reason', stats.failures)}${jobs}</section>
<form method="get" action="/console" class="filters" role="search" aria-label="Filter installations">
<div><label for="f-state">State</label><select id="f-state" name="state"><option value="">any</option>${o.states.map((s) => option(s, filter.state)).join('')}</select></div>
<div><label for="f-reason">Failure reason</label><select id="f-reason" name="reason"><option value="">any</option>${reasons.map((r) => option(r, filter.reason)).join('')}</select></div>
<div><label for="f-q">Instance id or installation id</label><input id="f-q" name="q" value="${e(filter.q ?? '')}" size="38" autocomplete="off"></div>
<button type="submit">Show</button> <a href="/console">Clear</a></form>
<table><caption>${o.items.length ? 'Newest first' : 'No installation matches.'}</caption>
<thead><tr><th scope="col">Installation</th><th scope="col">Instance id</th><th scope="col">State</th><th scope="col">Reason</th><th scope="col">Created</th><th scope="col">Updated</th></tr></thead>
<tbody>${rows.join('')}</tbody></table>${next}`
}

const strip = (f: ListFilter) => Object.fromEntries(Object.entries(f).filter(([, v]) => v)) as Record<string, string>

/** Which admin actions the installation's state allows, each with what it does in words. */
export interface Actions { finish: boolean; retry: boolean; cancel: boolean }

const ACTION_WORDS = {
  finish: { button: 'Finish…', confirm: 'Send APP_FINISHED_CONFIGURATION to Wix and mark the installation Finished.', yes: 'Yes, finish it' },
  retry: { button: 'Retry the bi-event…', confirm: 'Send APP_FINISHED_CONFIGURATION to Wix again; its last attempt failed.', yes: 'Yes, retry' },
  cancel: { button: 'Cancel…', confirm: 'End this installation for good (reason: cancelled). The site owner would have to install again.', yes: 'Yes, cancel it' },
} as const

function actionsView(id: string, csrf: string, actions: Actions) {
  const forms = (Object.keys(ACTION_WORDS) as (keyof Actions)[]).filter((a) => actions[a]).map((a) => {
    const w = ACTION_WORDS[a]
    return `<details><summary>${w.button}</summary><p>${e(w.confirm)}</p>`
      + postForm(`/console/installations/${id}/${a}`, csrf, `<input type="hidden" name="confirm" value="yes"><button type="submit"${a === 'cancel' ? ' class="danger"' : ''}>${w.yes}</button>`)
      + '</details>'
  })
  return forms.length ? `<div class="actions">${forms.join('')}</div>` : '<p class="muted">No action applies in this state.</p>'
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
}

/** One installation: what it is, what can be done, its machine drawn, its history and effect attempts. */
export function installationView(p: InstallationPage) {
  const i = p.installation
  const failure = i.failure
    ? `<dt>Failure</dt><dd><strong>${e(i.failure.reason)}</strong>: ${e(i.failure.detail)}</dd>` : ''
  const lastError = i.lastError
    ? `<dt>Last error</dt><dd><code>${e(i.lastError.code)}</code> ${e(i.lastError.message)}${i.lastError.wixRequestId ? ` (Wix request id <code>${e(i.lastError.wixRequestId)}</code>)` : ''}</dd>` : ''
  const siblings = p.siblings.length > 1
    ? `<p>Instance <code>${e(i.instanceId ?? '')}</code> has ${p.siblings.length} installations: ${p.siblings.map((s) =>
      s.id === i.id ? `<strong>this one</strong> (${e(s.state)})` : `<a href="/console/installations/${e(s.id)}">${e(s.id.slice(0, 8))}</a> (${e(s.state)})`).join(', ')}.</p>` : ''
  const history = p.history.map((h) => `<tr><td>${h.seq}</td><td><code>${e(h.event)}</code>${h.event !== eventLabel(h.event) ? ` <span class="muted">(${e(eventLabel(h.event))})</span>` : ''}</td>`
    + `<td>${h.from ? e(h.from) : dash} → ${e(h.to)}</td><td>${e(h.source)}</td><td>${time(h.at)}</td></tr>`)
  const attempts = p.attempts.map((a) => `<tr><td>${e(a.effect)}</td><td>${a.attempt}</td><td class="outcome-${a.outcome}">${e(a.outcome)}</td>`
    + `<td>${a.error ? `<code>${e(a.error.code)}</code>${a.error.status ? ` (HTTP ${a.error.status})` : ''} ${e(a.error.message)}` : dash}</td>`
    + `<td>${a.wixRequestId ? `<code>${e(a.wixRequestId)}</code>` : dash}</td><td>${time(a.startedAt)}</td><td>${time(a.finishedAt)}</td></tr>`)
  const inspect = p.inspect.enabled
    ? postForm(`/console/installations/${i.id}/inspect`, p.csrf, '<button type="submit">Replay into the XState inspector</button>')
    : `<p>The XState inspector is off (<code>INSPECT</code> is unset). Start the service with <code>INSPECT=true</code> to replay from here,
or run <code>npm run inspect -- ${e(i.id)}</code> while it is stopped.</p>`
  return `<p><a href="/console">← All installations</a></p>
<div data-live="/console/installations/${e(i.id)}/version" data-version="${i.version}" data-state="${e(i.statePath)}">
<h1>Installation <code>${e(i.id)}</code></h1>
<dl class="facts"><dt>State</dt><dd><strong>${e(i.statePath)}</strong></dd>
<dt>Instance id</dt><dd>${i.instanceId ? `<code>${e(i.instanceId)}</code>` : 'not known yet (before the Redirect URL)'}</dd>
${failure}${lastError}<dt>Started from</dt><dd>${i.origin === 'app-url' ? 'the App URL (Wix)' : "the app's own platform"}</dd>
<dt>Created</dt><dd>${time(i.createdAt)}</dd><dt>Updated</dt><dd>${time(i.updatedAt)}</dd><dt>Events accepted</dt><dd>${i.version}</dd></dl>
${siblings}
<section aria-labelledby="actions-h"><h2 id="actions-h">Actions</h2>${actionsView(i.id, p.csrf, p.actions)}</section>
<section aria-labelledby="diagram-h"><h2 id="diagram-h">State machine</h2><figure>${p.diagram}
<figcaption>Now in <strong>${e(i.statePath)}</strong> (marked “now”, with the heaviest border). Solid boxes and heavy arrows are the path this installation took; dashed boxes were never entered.</figcaption></figure></section>
<section aria-labelledby="history-h"><h2 id="history-h">History</h2><table><caption>Every accepted event, oldest first (the transitions taken)</caption>
<thead><tr><th scope="col">#</th><th scope="col">Event</th><th scope="col">From → to</th><th scope="col">Source</th><th scope="col">At</th></tr></thead><tbody>${history.join('')}</tbody></table></section>
<section aria-labelledby="attempts-h"><h2 id="attempts-h">Effect attempts</h2>${attempts.length ? `<table><caption>Every run of every effect, with Wix's request id when a call failed</caption>
<thead><tr><th scope="col">Effect</th><th scope="col">Attempt</th><th scope="col">Outcome</th><th scope="col">Error</th><th scope="col">Wix request id</th><th scope="col">Started</th><th scope="col">Finished</th></tr></thead>
<tbody>${attempts.join('')}</tbody></table>` : '<p class="muted">No effect has run yet.</p>'}</section>
</div>
<p id="live-status" class="muted" aria-live="polite">This page follows the installation as it moves.</p>
<section aria-labelledby="inspect-h"><h2 id="inspect-h">XState inspector</h2>${inspect}</section>`
}
