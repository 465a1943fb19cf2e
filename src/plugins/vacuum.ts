import fp from 'fastify-plugin'
import { createVacuumKeeper, type VacuumKeeper } from '../db/vacuum.ts'

declare module 'fastify' {
  interface FastifyInstance {
    vacuum: VacuumKeeper
  }
}

/** Vacuums the service's tables when the server's autovacuum is off (see src/db/vacuum.ts). */
export default fp<{ schedule?: boolean }>(
  async (app, opts) => {
    const vacuum = createVacuumKeeper({ sql: app.sql, schemas: ['wix_engine', 'wix_install'], log: app.log })
    app.decorate('vacuum', vacuum)
    if (opts.schedule === false) return
    app.addHook('onReady', async () => vacuum.start())
    app.addHook('onClose', async () => vacuum.stop())
  },
  { name: 'vacuum', dependencies: ['database'] },
)
