export const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)

/** The look of every page a site owner sees: readable, high-contrast, no external resource. */
const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}
h1{font-size:1.6rem;line-height:1.25}.app{color:#444;margin:0}.code{color:#555;font-size:.8rem;margin-top:2.5rem}
.button{display:inline-block;padding:.6rem 1.1rem;border:2px solid #1a1a1a;border-radius:6px;background:#1a1a1a;
color:#fff;text-decoration:none;font-weight:600}.button:focus-visible{outline:3px solid #0a58ca;outline-offset:3px}`

export interface PageOptions {
  refreshTo?: string
  refreshSeconds?: number
  /** The app the site owner is installing, named above the title. */
  appName?: string
  /** What the owner can do next: a link shown as a button. */
  action?: { href: string; label: string }
  /** Our error code, shown small, for the owner to quote to support. */
  code?: string
}

/** The few pages a browser sees from the install flow: plain, escaped, no script, no external resource. */
export function htmlPage(title: string, message: string, opts: PageOptions = {}) {
  const refresh = opts.refreshTo
    ? `<meta http-equiv="refresh" content="${opts.refreshSeconds ?? 2};url=${escapeHtml(opts.refreshTo)}">`
    : ''
  const app = opts.appName ? `<p class="app">${escapeHtml(opts.appName)}</p>` : ''
  const action = opts.action
    ? `<p><a class="button" href="${escapeHtml(opts.action.href)}">${escapeHtml(opts.action.label)}</a></p>`
    : ''
  const code = opts.code
    ? `<p class="code"><small>Error code for support: <code>${escapeHtml(opts.code)}</code></small></p>`
    : ''
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
${refresh}<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main>${app}<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>${action}${code}</main></body></html>`
}

/** Where a site owner starts an installation again (the platform-started install). */
export const startAgainUrl = (publicUrl: string) => `${publicUrl}/wix/install`
const startAgain = (publicUrl: string) => ({ href: startAgainUrl(publicUrl), label: 'Start the installation again' })

/**
 * The page for a browser whose installation is still being confirmed by Wix. `detour`: it is
 * about to pass through Wix's installer once more for a new code; to the owner, still a moment.
 */
export const waitingPage = (appName: string, continueTo: string, detour = false) => detour
  ? htmlPage('One more moment…', 'One more moment, Wix is confirming your installation. This page moves on by itself.',
    { appName, refreshTo: continueTo })
  : htmlPage('Finishing the installation…',
    `Wix is taking a moment to confirm that ${appName} is installed. This page moves on by itself.`,
    { appName, refreshTo: continueTo })

/** The page for an installation that failed: what it means for the owner, and a way to start again. */
export function installFailedPage(appName: string, publicUrl: string, reason?: string) {
  const why = FAILURE_WORDS[reason ?? ''] ?? 'something went wrong while Wix confirmed it'
  return htmlPage('The installation could not be completed',
    `${appName} could not be installed on your site: ${why}. Please start the installation again.`,
    { appName, action: startAgain(publicUrl), code: reason?.toUpperCase() })
}

/** The page for an owner who chose Cancel on Wix's consent screen. */
export const cancelledPage = (appName: string, publicUrl: string) =>
  htmlPage('Installation cancelled',
    `${appName} was not installed. You can close this window, or start again if you cancelled by mistake.`,
    { appName, action: startAgain(publicUrl) })

/** A failure reason in a site owner's words. */
const FAILURE_WORDS: Record<string, string> = {
  exchange_refused: 'Wix did not accept the confirmation of this installation',
  exchange_unavailable: 'Wix could not be reached to confirm the installation',
  code_expired: 'the installation took too long to confirm',
  consent_declined: 'the permissions were not approved',
  consent_abandoned: 'the permissions screen was left without an answer',
  cancelled: 'the installation was stopped by the app\'s support team',
  uninstalled: 'the app was removed from the site',
  reinstall_required: 'Wix no longer accepts this installation\'s access',
}
