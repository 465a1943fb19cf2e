import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { bindWorkflow } from '../bind-log.ts'
import { wixCookies } from './cookies.ts'
import { errorReplies } from './replies.ts'

/** Marks a start sent on to PUBLIC_URL's host, so it is never sent on twice. */
const MOVED_PARAM = 'moved'
/** Abandoned consent screens leave state cookies behind; past this many, the extras are dropped. */
const MAX_STATE_COOKIES = 8

/** Steps 1–2: the App URL and a platform-started install, each a new installation sent to Wix's installer. */
const startRoutes: FastifyPluginAsyncZod = async (app) => {
  const { config, installFlow: flow } = app
  const { stateCookie, setCookie, clearCookie, namesOf } = wixCookies(config)

  const publicHost = new URL(config.publicUrl).host
  /**
   * A start on another name for this server (127.0.0.1 for localhost, an apex for www) would set
   * its state cookie on a host the Redirect URL never comes back to: it goes to PUBLIC_URL's host
   * first, same path and query. `request.host` follows TRUST_PROXY. One hop only: a proxy that
   * rewrites the Host header (and is not trusted) would bounce it forever, so a request that was
   * sent here already stays, and the log says what to fix.
   */
  function canonicalStart(request: FastifyRequest, path: string): string | undefined {
    if ((request.host ?? '').toLowerCase() === publicHost) return undefined
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : ''
    const params = new URLSearchParams(query)
    if (params.has(MOVED_PARAM)) {
      request.log.warn({ host: request.host, publicHost }, 'a start arrived on a host other than PUBLIC_URL\'s twice: '
        + 'set PUBLIC_URL to the address browsers use, or TRUST_PROXY so X-Forwarded-Host is believed')
      return undefined
    }
    return `${config.publicUrl}${path}?${query ? `${query}&` : ''}${MOVED_PARAM}=1`
  }

  async function begin(request: FastifyRequest, reply: FastifyReply, origin: 'app-url' | 'platform', token?: string) {
    const canonical = canonicalStart(request, origin === 'app-url' ? '/wix/app-url' : '/wix/install')
    if (canonical) return reply.redirect(canonical, 302)
    const started = await flow.begin(origin, token)
    bindWorkflow(request, reply, started.installation.id)
    // Browsers send cookies of one path oldest first: the oldest abandoned ones go.
    const older = namesOf(request, 'state')
    for (const name of older.slice(0, Math.max(0, older.length - (MAX_STATE_COOKIES - 1)))) clearCookie(reply, name)
    setCookie(reply, stateCookie(started.installation.id), started.state, config.consentTimeoutMs / 1000)
    return reply.redirect(started.installerUrl, 302)
  }

  app.get('/wix/app-url', {
    schema: {
      querystring: z.object({ token: z.string().min(1).max(4096), [MOVED_PARAM]: z.literal('1').optional() }),
      response: errorReplies,
    },
    handler: async (request, reply) => begin(request, reply, 'app-url', request.query.token),
  })

  app.get('/wix/install', {
    schema: { querystring: z.object({ [MOVED_PARAM]: z.literal('1').optional() }), response: errorReplies },
    handler: async (request, reply) => begin(request, reply, 'platform'),
  })
}

export default startRoutes
