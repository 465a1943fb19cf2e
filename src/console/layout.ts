import { escapeHtml as e } from '../routes/html.ts'

/** What every console page needs from the request: the CSRF token for its forms, when signed in. */
export interface Shell {
  title: string
  appName: string
  csrf?: string
  /** Status lines shown on top (an action's result, a rejected sign-in), read out by screen readers. */
  notice?: { kind: 'ok' | 'error'; text: string }
}

/** A form that changes something: always a POST with the session's CSRF token. */
export const postForm = (action: string, csrf: string, inner: string, attrs = '') =>
  `<form method="post" action="${e(action)}"${attrs}>`
  + `<input type="hidden" name="csrf" value="${e(csrf)}">${inner}</form>`

/** The console's page: one stylesheet and one small script, both served from here (no CDN). */
export function consolePage(shell: Shell, body: string) {
  const signOut = shell.csrf
    ? postForm('/console/sign-out', shell.csrf, '<button type="submit" class="link">Sign out</button>')
    : ''
  const notice = shell.notice
    ? `<p class="notice ${shell.notice.kind}" role="${shell.notice.kind === 'error' ? 'alert' : 'status'}">`
      + `<strong>${shell.notice.kind === 'error' ? 'Not done: ' : 'Done: '}</strong>${e(shell.notice.text)}</p>`
    : ''
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${e(shell.title)} · ${e(shell.appName)} console</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script></head>
<body><a class="skip" href="#main">Skip to content</a>
<header><nav aria-label="Console">
<a href="/console" class="brand">${e(shell.appName)} · installations</a>${signOut}</nav></header>
<main id="main">${notice}${body}</main></body></html>`
}

export function signInPage(appName: string, o: { next?: string; rejected?: boolean }) {
  const next = o.next ? `<input type="hidden" name="next" value="${e(o.next)}">` : ''
  return consolePage(
    {
      title: 'Sign in',
      appName,
      notice: o.rejected ? { kind: 'error', text: 'That is not the admin token.' } : undefined,
    },
    `<h1>Sign in</h1><p>The console shows every installation of ${e(appName)}. Sign in with the service's admin token
(<code>ADMIN_TOKEN</code>; in sandbox mode <code>npm start</code> prints it).</p>
<form method="post" action="/console/sign-in" class="sign-in">${next}
<input type="text" name="username" value="admin" autocomplete="username" hidden>
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button></form>`,
  )
}

export interface ConsoleError {
  appName: string
  /** The session's CSRF token, for the sign-out form, when signed in. */
  csrf?: string
  statusCode: number
  code: string
  message: string
  /** The id the page was asked for, offered as a search: an instance id may only be claimed. */
  id?: string
}

/**
 * An error in the console (an unknown id or page, a refused or failed request) in the console's
 * own layout, saying what to try next: a search by instance id, and the recent installations
 * (claims marked as such).
 */
export function consoleErrorPage(o: ConsoleError) {
  const title = o.statusCode === 404 ? 'Not found' : o.statusCode >= 500 ? 'Something went wrong' : 'Not done'
  const search = o.id ? `<li><a href="/console?q=${encodeURIComponent(o.id)}">Search for <code>${e(o.id)}</code></a>`
    + ' as an instance id or an installation id</li>' : ''
  return consolePage({ title, appName: o.appName, csrf: o.csrf }, `<h1>${title}</h1>
<p role="alert">${e(o.message)} <span class="muted">(<code>${e(o.code)}</code>)</span></p>
<h2>What to try next</h2>
<ul>${search}<li><a href="/console">The recent installations</a>, newest first, claims among them marked as claims</li></ul>
<form method="get" action="/console" class="filters" role="search" aria-label="Find an installation">
<div><label for="e-q">Instance id or installation id</label>
<input id="e-q" name="q" value="${e(o.id ?? '')}" size="38" autocomplete="off"></div>
<button type="submit">Search</button></form>`)
}

/** A timestamp as people read it, with the exact instant for machines. */
export const time = (d: Date) =>
  `<time datetime="${d.toISOString()}">${d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}</time>`

export const CONSOLE_CSS = `
:root{color-scheme:light;--ink:#1a1a1a;--muted:#555;--line:#bbb;--accent:#0a58ca;--bad:#a4161a;--ok:#1b6e2a}
*{box-sizing:border-box}body{font:15px/1.5 system-ui,sans-serif;color:var(--ink);margin:0}
header{border-bottom:1px solid var(--line);padding:.6rem 1rem}
nav{display:flex;gap:1rem;align-items:center;justify-content:space-between}nav form{margin:0}
.brand{font-weight:700;color:var(--ink);text-decoration:none}main{padding:1rem;max-width:80rem;margin:0 auto}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.5rem;background:#fff;padding:.3rem}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,summary:focus-visible{
outline:3px solid var(--accent);outline-offset:2px}
button{font:inherit;padding:.35rem .9rem;border:2px solid var(--ink);border-radius:5px;background:var(--ink);
color:#fff;cursor:pointer}
button.link{background:none;border:none;color:var(--accent);text-decoration:underline;padding:0}
button.danger{background:var(--bad);border-color:var(--bad)}
input,select{font:inherit;padding:.3rem;border:1px solid var(--muted);border-radius:4px}label{font-weight:600}
.sign-in{display:grid;gap:.5rem;max-width:24rem}
.notice{padding:.5rem .8rem;border:2px solid;border-radius:5px}.notice.error{border-color:var(--bad)}
.notice.ok{border-color:var(--ok)}table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:700}td code,dd code{word-break:break-all}
caption{text-align:left;font-weight:600;padding:.3rem 0}
.filters{display:flex;flex-wrap:wrap;gap:.8rem;align-items:end;margin:1rem 0}.filters div{display:grid}
.stats{display:flex;flex-wrap:wrap;gap:1.5rem}.stats-title{width:100%;margin:0;font-size:1.1rem}
.stats dl{display:grid;grid-template-columns:auto auto;gap:.1rem .8rem;margin:0}
.stats dd{margin:0;font-variant-numeric:tabular-nums}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dl.facts dt{font-weight:600}
dl.facts dd{margin:0}.actions{display:flex;flex-wrap:wrap;gap:1rem}
.actions details{border:1px solid var(--line);border-radius:5px;padding:.4rem .7rem}
.actions summary{cursor:pointer;font-weight:600}figure{margin:0;overflow-x:auto}
figcaption{color:var(--muted);margin:.3rem 0}.diagram text{font:12px system-ui,sans-serif;fill:var(--ink)}
.diagram .state rect{fill:#fff;stroke:#888;stroke-width:1;stroke-dasharray:4 3}
.diagram .state.compound rect{fill:#f6f6f6}.diagram .state text{font-size:13px}
.diagram .state.visited rect{stroke:var(--ink);stroke-width:2;stroke-dasharray:none}
.diagram .state.active rect{stroke:var(--accent);stroke-width:4;stroke-dasharray:none}
.diagram .state[aria-current] rect{fill:#e8f0fe}.diagram .state[aria-current] text{font-weight:700}
.diagram .now{font-weight:700;fill:var(--accent)}.diagram .any rect{stroke-dasharray:2 2}
.diagram .start{fill:var(--ink)}.diagram .edge path{fill:none;stroke:#999;stroke-width:1}
.diagram .edge text{fill:var(--muted);font-size:11px}
.diagram .edge.taken path{stroke:var(--ink);stroke-width:3}
.diagram .edge.taken text{fill:var(--ink);font-weight:700}.diagram marker path{fill:#999}
.diagram #arrow-taken path{fill:var(--ink)}.outcome-failed,.outcome-retry{font-weight:700}
.muted{color:var(--muted)}@media (prefers-reduced-motion:no-preference){.notice{transition:opacity .2s}`

/**
 * The console's only script: an open installation page follows its installation. It asks for the
 * version every 2 s and, when it moved, swaps in the freshly rendered part of the page.
 */
export const CONSOLE_JS = `'use strict'
;(() => {
  const region = () => document.querySelector('[data-live]')
  const status = document.getElementById('live-status')
  if (!region() || !status) return
  let busy = false
  setInterval(async () => {
    const live = region()
    if (busy || document.hidden || !live) return
    // Never pull the page from under someone using it: an open confirmation or a focused control waits.
    if (live.querySelector('details[open]') || live.contains(document.activeElement)) return
    busy = true
    try {
      const res = await fetch(live.dataset.live, { headers: { accept: 'application/json' }, cache: 'no-store' })
      if (!res.ok) return
      const now = await res.json()
      if (String(now.version) === live.dataset.version) return
      const page = await fetch(location.pathname, { headers: { accept: 'text/html' }, cache: 'no-store' })
      if (!page.ok) return
      const fresh = new DOMParser().parseFromString(await page.text(), 'text/html').querySelector('[data-live]')
      if (!fresh) return
      live.replaceWith(document.adoptNode(fresh))
      status.textContent = 'Updated: the installation is now ' + fresh.dataset.state + '.'
    } catch {
      // A network blip: the next tick tries again.
    } finally {
      busy = false
    }
  }, 2000)
})()
`
