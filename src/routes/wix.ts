/**
 * The browser-facing steps of the Wix flow, one plugin a concern in wix/: start.ts (the App URL
 * and a platform-started install), redirect.ts (the Redirect URL and the page a waiting browser
 * checks again); send-on.ts answers a browser once its exchange is over, cookies.ts keeps the
 * flow's signed cookies, replies.ts the schemas of what the routes answer.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { Errors } from '../errors.ts'
import redirectRoutes from './wix/redirect.ts'
import startRoutes from './wix/start.ts'

/** The three browser-facing steps: App URL, platform-started install, Redirect URL. */
const wixRoutes: FastifyPluginAsyncZod = async (app) => {
  // Wix may load these pages in its window or an iframe; nothing here may be cached or leak a
  // code or token through the Referer header.
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('cross-origin-opener-policy', 'unsafe-none')
    reply.header('cache-control', 'no-store')
    reply.header('referrer-policy', 'no-referrer')
  })

  // Fastify's query parser keeps a malformed escape (`%zz`, `%E0%A4%A`) or invalid UTF-8 (`%ff`)
  // as literal text; a value nobody sent is refused before it can spend a state or start a flow.
  app.addHook('onRequest', async (request) => {
    const query = request.url.indexOf('?')
    if (query < 0) return
    for (const part of request.url.slice(query + 1).split('&')) {
      try {
        decodeURIComponent(part.replace(/\+/g, ' '))
      } catch {
        throw new Errors.INVALID_REQUEST('the query string holds a malformed percent-encoding or invalid UTF-8')
      }
    }
  })

  await app.register(startRoutes)
  await app.register(redirectRoutes)
}

export default wixRoutes
