import { createHmac } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { safeEqual } from '../../../crypto/oauth-state.ts'
import { GUID, page, sendHtml } from '../http.ts'
import type { FakeWix } from '../model-types.ts'
import { controlPanel, SANDBOX_SWITCHES } from '../panel-page.ts'

const actionBody = z.object({
  csrf: z.string(),
  action: z.enum([...Object.keys(SANDBOX_SWITCHES), 'release', 'reset', 'install-new-app', 'uninstall']),
  instanceId: z.string().regex(GUID).optional(),
})

const sameOrigin = (req: FastifyRequest) => {
  const site = req.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false
  const origin = req.headers.origin
  if (origin === undefined) return true
  try { return new URL(origin).host === req.headers.host } catch { return false }
}

/** The same switches as a page of plain forms, for a person showing the failure paths. */
export async function panelRoutes(fastify: FastifyInstance, opts: { wix: FakeWix; appSecret: string }): Promise<void> {
  const { wix } = opts
  // The panel's forms carry a token only the panel's page shows, and must come from this origin.
  const csrfToken = createHmac('sha256', opts.appSecret).update('sandbox control panel').digest('base64url')

  fastify.get('/', async (req, reply) => {
    const path = req.url.split('?')[0]!
    // Relative form actions need the trailing slash (`/_sandbox/wix` → `/_sandbox/wix/`).
    if (!path.endsWith('/')) return reply.redirect(`${path.slice(path.lastIndexOf('/') + 1)}/`, 302)
    return sendHtml(reply, 200, controlPanel(wix, csrfToken))
  })

  fastify.post('/_control/action', async (req, reply) => {
    const sent = (req.body as { csrf?: unknown } | null)?.csrf
    if (!sameOrigin(req) || typeof sent !== 'string' || !safeEqual(sent, csrfToken)) {
      return sendHtml(reply, 403, page('Refused', '<p>This request did not come from the control panel. <a href="../">Open the control panel</a></p>'))
    }
    const b = actionBody.safeParse(req.body)
    if (!b.success) return sendHtml(reply, 400, page('Unknown action', '<p><a href="../">Back to the control panel</a></p>'))
    const { action, instanceId } = b.data
    if (action === 'release') wix.releaseAll()
    else if (action === 'reset') wix.reset()
    else if (action === 'install-new-app') await wix.installApp()
    else if (action === 'uninstall') {
      if (!instanceId) return sendHtml(reply, 400, page('Choose a site', '<p><a href="../">Back to the control panel</a></p>'))
      await wix.uninstallApp(instanceId.toLowerCase())
    } else wix.failNext(SANDBOX_SWITCHES[action]!.failure)
    // 303: the browser GETs the panel again, and a reload does not post twice.
    return reply.redirect('../', 303)
  })
}
