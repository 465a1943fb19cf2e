import { escapeHtml } from '../../routes/html.ts'
import { page } from './http.ts'
import type { FakeWix, FakeWixFailure } from './model-types.ts'

/** The panel's one-click failures; each plays the failure path its label names. */
export const SANDBOX_SWITCHES: Record<string, { label: string; failure: FakeWixFailure }> = {
  'exchange-503': { label: 'Next code exchange answers 503 (retried, then the install completes)', failure: { endpoint: 'oauth/access', grant: 'authorization_code', status: 503 } },
  'exchange-429': { label: 'Next code exchange answers 429 with Retry-After: 1 (retried)', failure: { endpoint: 'oauth/access', grant: 'authorization_code', status: 429, retryAfterSeconds: 1 } },
  'exchange-400': { label: 'Next code exchange answers 400 (refused: never retried, the install fails)', failure: { endpoint: 'oauth/access', grant: 'authorization_code', status: 400, message: 'Injected failure: the authorization code was refused' } },
  'exchange-slow': { label: 'Next code exchange answers after 15 s (the browser sees the waiting page)', failure: { endpoint: 'oauth/access', grant: 'authorization_code', delayMs: 15_000 } },
  'exchange-lost': { label: "Next code exchange is done at Wix but its answer is lost (the code is spent; the waiting browser goes back to Wix's installer for a new one)", failure: { endpoint: 'oauth/access', grant: 'authorization_code', loseAnswer: 'cut' } },
  'bi-event-500': { label: 'Next bi-event answers 500 (retried, then the install finishes)', failure: { endpoint: 'bi-event', status: 500 } },
}

/** The control panel: the failure switches and the app's life on a site as plain forms, and what the fake saw. */
export function controlPanel(wix: FakeWix, csrf: string): string {
  const token = `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`
  const count = (endpoint: string, grant?: string) => wix.requests.filter((r) =>
    r.endpoint === endpoint && (!grant || (r.body as { grant_type?: unknown } | null)?.grant_type === grant)).length
  const button = (action: string, label: string) =>
    `<form method="post" action="_control/action">${token}<input type="hidden" name="action" value="${escapeHtml(action)}">` +
    `<button type="submit" id="${escapeHtml(action)}">${escapeHtml(label)}</button></form>`
  const describe = (f: FakeWixFailure & { left: number }) =>
    `${f.endpoint}${f.grant ? ` (${f.grant})` : ''}: ${f.hang ? 'hangs' : `${f.delayMs ? `after ${f.delayMs / 1000} s, ` : ''}${f.status ?? 'a normal answer'}`}, ${f.left} more time(s)`
  const pending = wix.pendingFailures()
  const sites = wix.installedInstances().slice(0, 50)
  const uninstall = sites.length
    ? `<form method="post" action="_control/action">${token}<input type="hidden" name="action" value="uninstall">` +
      `<label for="instanceId">Site (instance id)</label> <select name="instanceId" id="instanceId">` +
      sites.map((id) => `<option value="${escapeHtml(id)}">${escapeHtml(id)}</option>`).join('') +
      `</select> <button type="submit" id="uninstall">Uninstall the app from this site (sends AppRemoved)</button></form>`
    : '<p id="uninstall">No site has the app installed yet.</p>'
  const sent = wix.webhooksSent.slice(-10).reverse().map((w) =>
    `<li>${escapeHtml(`${new Date(w.at).toISOString()} ${w.eventType} ${w.instanceId} → ${w.status || 'not delivered'}`)}</li>`).join('')
  const recent = wix.requests.slice(-20).reverse().map((r) => {
    const grant = (r.body as { grant_type?: unknown } | null)?.grant_type
    return `<li>${escapeHtml(`${new Date(r.at).toISOString()} ${r.method} ${r.endpoint}${typeof grant === 'string' ? ` ${grant}` : ''} → ${r.status || 'held'}`)}</li>`
  }).join('')
  return page('Sandbox Wix control panel',
    `<p id="calls">Recorded calls: ${wix.requests.length} (code exchanges: ${count('oauth/access', 'authorization_code')}, ` +
    `refreshes: ${count('oauth/access', 'refresh_token')}, bi-events: ${count('bi-event')}).</p>` +
    `<h2>Make the next call fail</h2>${Object.entries(SANDBOX_SWITCHES).map(([k, s]) => button(k, s.label)).join('')}` +
    `<h2>Queued failures</h2>${pending.length ? `<ul id="pending">${pending.map((f) => `<li>${escapeHtml(describe(f))}</li>`).join('')}</ul>` : '<p id="pending">None.</p>'}` +
    button('release', 'Answer held calls now') + button('reset', 'Clear queued failures and recorded calls') +
    `<h2>The app's life on a site</h2>` +
    button('install-new-app', 'Install as a new app on a new site (no redirect flow; sends AppInstalled)') + uninstall +
    `<h2>Webhooks sent</h2>${sent ? `<ol id="webhooks">${sent}</ol>` : '<p id="webhooks">None yet.</p>'}` +
    `<h2>Latest calls</h2>${recent ? `<ol>${recent}</ol>` : '<p>None yet.</p>'}`)
}
