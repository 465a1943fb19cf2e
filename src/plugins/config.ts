import fp from 'fastify-plugin'
import type { Config } from '../config.ts'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    /** The service's clock; tests replace it to move time instead of waiting. */
    now: () => Date
  }
}

export default fp<{ config: Config; now?: () => Date }>(
  async (app, opts) => {
    app.decorate('config', opts.config)
    app.decorate('now', opts.now ?? (() => new Date()))
  },
  { name: 'config' },
)
