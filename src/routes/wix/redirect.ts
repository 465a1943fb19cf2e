import { setMaxListeners } from 'node:events'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { installationIdOf, OAUTH_STATE_PATTERN } from '../../crypto/oauth-state.ts'
import { Errors } from '../../errors.ts'
import { UUID } from '../../installation/queries.ts'
import { normalizeInstanceId, WIX_GUID } from '../../wix/ids.ts'
import { bindWorkflow } from '../bind-log.ts'
import { cancelledPage } from '../html.ts'
import { wixCookies } from './cookies.ts'
import { errorReplies, errorReply, page } from './replies.ts'
import { browserSendOn } from './send-on.ts'

const state = z.string().regex(OAUTH_STATE_PATTERN, 'must be a state this service issued')
const redirectQuery = z
  .object({
    code: z.string().min(1).max(2048).optional(),
    state,
    instanceId: z.string().regex(WIX_GUID, 'must be a Wix instance id (a GUID)').transform(normalizeInstanceId).optional(),
    error: z.string().min(1).max(200).optional(),
    error_description: z.string().max(1000).optional(),
  })
  .refine((q) => q.error !== undefined || (q.code !== undefined && q.instanceId !== undefined), {
    message: 'needs code and instanceId (or error)',
  })

/** Steps 3–6: the Redirect URL Wix sends the browser back to, and the page a waiting browser checks again. */
const redirectRoutes: FastifyPluginAsyncZod = async (app) => {
  const { config, installFlow: flow, engine } = app
  const cookies = wixCookies(config)
  const { stateCookie, flowCookie, clearCookie, readCookie, followInstallation, namesOf } = cookies
  const closing = new AbortController()
  // One listener per waiting browser, each removed as its wait ends: as many as browsers wait.
  setMaxListeners(0, closing.signal)
  // preClose: before the server waits for its requests to end, so that the waits end first.
  app.addHook('preClose', async () => closing.abort())
  const { continueUrl, settleAndSendOn } = browserSendOn({ config, flow, cookies, closing: closing.signal })

  app.get('/wix/redirect', {
    schema: { querystring: redirectQuery, response: { ...errorReplies, 200: page, 202: page } },
    handler: async (request, reply) => {
      const q = request.query
      const cookieState = readCookie(request, stateCookie(installationIdOf(q.state)))
      if (q.error !== undefined) {
        const declined = await flow.decline({ error: q.error, description: q.error_description, state: q.state }, cookieState)
        bindWorkflow(request, reply, declined.id)
        clearCookie(reply, stateCookie(declined.id))
        return reply.type('text/html; charset=utf-8').send(cancelledPage(config.appName, config.publicUrl))
      }
      const installation = await flow.callback({ code: q.code!, state: q.state, instanceId: q.instanceId! }, cookieState).catch((err: unknown) => {
        // This browser's own callback again: the answer stays 409, and the page (for a browser)
        // moves on to wherever its installation got to, as the first answer would have.
        if (err instanceof Errors.STATE_ALREADY_USED && 'installationId' in err) {
          followInstallation(reply, String(err.installationId))
          Object.assign(err, { continueTo: continueUrl(String(err.installationId)) })
        }
        throw err
      })
      bindWorkflow(request, reply, installation.id)
      followInstallation(reply, installation.id)
      return settleAndSendOn(reply, installation.id, config.redirectWaitMs)
    },
  })

  app.get('/wix/redirect/continue', {
    schema: {
      querystring: z.object({ installation: z.uuid().optional().describe('The installation this page follows (several tabs may install at once)') }),
      response: { 200: page, 202: page, 400: errorReply, 429: errorReply },
    },
    handler: async (request, reply) => {
      // Without the installation named, the browser's one flow cookie says which (the newest if several).
      const named = request.query.installation
      const name = named ? flowCookie(named) : namesOf(request, 'flow').at(-1)
      const id = name && readCookie(request, name)
      if (!id || (named && id !== named)) throw new Errors.FLOW_COOKIE_MISSING()
      // The signature proves only that this service set the value, under any name: a state cookie's
      // value sent under a flow cookie's name is refused here, before it reaches the database.
      if (!UUID.test(id) || name !== flowCookie(id)) throw new Errors.FLOW_COOKIE_INVALID()
      const installation = await engine.get(id)
      if (!installation) throw new Errors.FLOW_COOKIE_MISSING()
      bindWorkflow(request, reply, id)
      return settleAndSendOn(reply, id, config.redirectWaitMs / 2)
    },
  })
}

export default redirectRoutes
