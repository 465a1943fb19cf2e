import fp from 'fastify-plugin'
import { createInstallFlow, type InstallFlow } from '../installation/flow.ts'

declare module 'fastify' {
  interface FastifyInstance {
    installFlow: InstallFlow
  }
}

export default fp(
  async (app) => {
    app.decorate('installFlow', createInstallFlow({ engine: app.engine, config: app.config, vault: app.vault }))
  },
  { name: 'install-flow', dependencies: ['engine'] },
)
