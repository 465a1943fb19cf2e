import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { escapeHtml } from '../../../routes/html.ts'
import { GUID, issuesOf, page, sendHtml } from '../http.ts'
import type { FakeWix } from '../model-types.ts'

const httpUrl = z.string().refine((s) => {
  try { return ['http:', 'https:'].includes(new URL(s).protocol) } catch { return false }
}, 'must be an absolute http(s) URL')

const installQuery = z.object({
  appId: z.string().min(1),
  redirectUrl: httpUrl,
  state: z.string().min(1),
  token: z.string().min(1).optional(),
  instanceId: z.string().regex(GUID).optional(),
})

function withParams(url: string, params: Record<string, string>): string {
  const u = new URL(url)
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v)
  return u.toString()
}

export interface InstallerOptions {
  wix: FakeWix
  /** See `FakeWixOptions.allowForcedInstanceId`. */
  allowForcedInstanceId?: boolean
  /** Codes whose exchange is followed by AppInstalled (`appInstalledOnApprove: 'after'`), by instance. */
  afterExchange: Map<string, string>
}

/** The installer, seen by the site owner's browser. */
export async function installerRoutes(fastify: FastifyInstance, opts: InstallerOptions): Promise<void> {
  const { wix, afterExchange } = opts

  fastify.get('/installer/install', async (req, reply) => {
    const q = installLink(wix, req, reply)
    if (!q) return reply
    const hidden = Object.entries(q).filter(([, v]) => v !== undefined)
      .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(String(v))}">`).join('')
    // Relative actions, so the page works under any mount prefix.
    return sendHtml(reply, 200, page('Install app on your site (fake Wix)',
      `<p>The app <code>${escapeHtml(q.appId)}</code> asks for access to your site.</p>` +
      `<form method="get" action="approve">${hidden}<button type="submit" id="approve">Approve</button></form>` +
      `<form method="get" action="cancel">${hidden}<button type="submit" id="cancel">Cancel</button></form>`))
  })

  fastify.get('/installer/approve', async (req, reply) => {
    const q = installLink(wix, req, reply)
    if (!q) return reply
    const forced = opts.allowForcedInstanceId ? q.instanceId?.toLowerCase() : undefined
    const { code, instanceId } = wix.issueCode(wix.instanceIdFor(q.token, forced))
    if (wix.appInstalledOnApprove === 'before') await wix.sendWebhook('AppInstalled', instanceId, { appId: wix.appId, originInstanceId: '' })
    if (wix.appInstalledOnApprove === 'after') afterExchange.set(code, instanceId)
    return reply.redirect(withParams(q.redirectUrl, { code, state: q.state, instanceId }), 302)
  })

  fastify.get('/installer/cancel', async (req, reply) => {
    const q = installLink(wix, req, reply)
    if (!q) return reply
    return reply.redirect(withParams(q.redirectUrl, {
      error: 'access_denied', error_description: 'The site owner cancelled the installation', state: q.state,
    }), 302)
  })

  fastify.get('/installer/close-window', async (req, reply) => {
    const token = (req.query as { access_token?: unknown }).access_token
    const note = typeof token !== 'string' ? 'No access token was given.'
      : wix.isValidAccessToken(token) ? 'The access token is valid.' : 'The access token is not valid.'
    return sendHtml(reply, 200, page('Installation complete',
      `<p>Installation complete, you can close this window.</p><p id="token-status">${escapeHtml(note)}</p>`))
  })
}

/** The installation link's query when it is one Wix would serve; otherwise answers the page saying why. */
function installLink(wix: FakeWix, req: FastifyRequest, reply: FastifyReply) {
  const q = installQuery.safeParse(req.query)
  if (!q.success) {
    const list = issuesOf(q.error).map((i) => `<li>${escapeHtml(`${i.path}: ${i.message}`)}</li>`).join('')
    sendHtml(reply, 400, page('Invalid installation link', `<ul>${list}</ul>`))
    return undefined
  }
  if (q.data.appId !== wix.appId) {
    sendHtml(reply, 400, page('Unknown app', `<p>No app with id ${escapeHtml(q.data.appId)} exists.</p>`))
    return undefined
  }
  // Wix sends codes only to the Redirect URL registered in the app dashboard.
  if (wix.redirectUrl !== undefined && q.data.redirectUrl !== wix.redirectUrl) {
    sendHtml(reply, 400, page('Redirect URL not registered', '<p>The redirectUrl is not the one registered for this app.</p>'))
    return undefined
  }
  return q.data
}
