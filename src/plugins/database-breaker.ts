import fp from 'fastify-plugin'
import { cancelQuery } from '../db/connect.ts'
import { Errors } from '../errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Called when a query finds the database unreachable. */
    databaseDown(): void
  }
}

/** Routes that answer about the database themselves, or need none. */
const EXEMPT = ['/healthz', '/metrics', '/docs']

/**
 * Once a query finds Postgres gone, every request that would need it gets a 503 at once instead
 * of queueing behind connection attempts; a probe each second notices when it is back.
 */
export default fp(
  async (app) => {
    let probe: ReturnType<typeof setInterval> | undefined
    let probing = false
    const check = async () => {
      // One probe at a time: a `select 1` the pool has not sent yet is not joined by another each second.
      if (probing) return
      probing = true
      try {
        const query = app.sql`select 1`
        let timer: ReturnType<typeof setTimeout> | undefined
        await Promise.race([
          query,
          new Promise((_, reject) => {
            timer = setTimeout(() => {
              cancelQuery(query) // queued or running, it goes: probes never pile up behind a stuck pool
              reject(new Error('probe timed out'))
            }, 2_000)
            timer.unref()
          }),
        ]).finally(() => clearTimeout(timer))
        clearInterval(probe)
        probe = undefined
        app.log.info('database reachable again')
      } catch {
        // still down: the next probe tries again
      } finally {
        probing = false
      }
    }
    app.decorate('databaseDown', () => {
      if (probe) return
      app.log.warn('database unavailable: answering 503 until it is back')
      probe = setInterval(check, 1_000)
      probe.unref()
    })
    app.addHook('onRequest', async (request, reply) => {
      if (!probe || EXEMPT.some((prefix) => request.url.startsWith(prefix))) return
      reply.header('retry-after', '5')
      throw new Errors.DATABASE_UNAVAILABLE()
    })
    app.addHook('onClose', async () => clearInterval(probe))
  },
  { name: 'database-breaker', dependencies: ['database'] },
)
