import fp from 'fastify-plugin'
import { createInstallationAdmin, type InstallationAdmin } from '../installation/admin.ts'

declare module 'fastify' {
  interface FastifyInstance {
    installations: InstallationAdmin
  }
}

export default fp(
  async (app) => {
    app.decorate('installations', createInstallationAdmin({ engine: app.engine, sql: app.sql, vault: app.vault, now: app.now }))
  },
  { name: 'installation-admin', dependencies: ['engine'] },
)
