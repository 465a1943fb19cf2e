import fp from 'fastify-plugin'
import { createRetention, type Retention } from '../retention/retention.ts'

declare module 'fastify' {
  interface FastifyInstance {
    retention: Retention
  }
}

/** The retention sweep (see src/retention/), started with the app unless `schedule` is false. */
export default fp<{ schedule?: boolean }>(
  async (app, opts) => {
    const retention = createRetention({ sql: app.sql, config: app.config.retention, now: app.now, log: app.log })
    app.decorate('retention', retention)
    if (opts.schedule === false) return
    app.addHook('onReady', async () => retention.start())
    // Before the database closes: a batch in flight finishes, its progress saved.
    app.addHook('onClose', async () => retention.stop())
  },
  { name: 'retention', dependencies: ['config', 'database'] },
)
