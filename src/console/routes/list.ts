import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { Workflow } from '../../engine/index.ts'
import { installationView } from '../../installation/view.ts'
import { consolePage } from '../layout.ts'
import { listView } from '../views.ts'
import { signedIn } from './guards.ts'
import { html, shell } from './html.ts'

const listQuery = z.object({
  state: z.union([z.literal(''), z.string().regex(/^[A-Za-z]{1,40}$/, 'must be a state name')]).optional(),
  reason: z.union([z.literal(''), z.string().regex(/^[a-z_]{1,40}$/, 'must be a failure reason')]).optional(),
  q: z.string().trim().max(64).regex(/^[A-Za-z0-9-]*$/, 'must be an instance id or an installation id').optional(),
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number({ error: 'must be a number' }).int().min(1).max(200).default(50),
})

/** The console's front page: installations, filtered, a page at a time, with counts by state. */
const listRoutes: FastifyPluginAsyncZod = async (app) => {
  const { config, installations, engine } = app
  const machine = () => engine.definition('installation').machine

  app.get('/console', { schema: { hide: true, querystring: listQuery } }, async (request, reply) => {
    const session = signedIn(request, reply, config.appName)
    if (!session) return reply
    const { state, reason, q, cursor, limit } = request.query
    const filter = { state: state || undefined, reason: reason || undefined }
    let page: { items: Workflow[]; nextCursor: string | null }
    if (q) {
      // An id finds its installation; an instance id finds every installation it had.
      const byInstance = await installations.list({ ...filter, instanceId: q, limit, cursor })
      const byId = await installations.find(q).catch(() => undefined)
      const extra = byId && !byInstance.items.some((w) => w.id === byId.id) ? [byId] : []
      page = { items: [...extra, ...byInstance.items], nextCursor: byInstance.nextCursor }
    } else {
      page = await installations.list({ ...filter, limit, cursor })
    }
    const stats = await installations.stats()
    const states = Object.keys(machine().root.states)
    return html(reply, consolePage(shell(config.appName, 'Installations', session), listView({
      stats,
      states,
      items: page.items.map(installationView),
      nextCursor: page.nextCursor,
      filter: { ...filter, q, limit: limit === 50 ? undefined : String(limit) },
    })))
  })
}

export default listRoutes
