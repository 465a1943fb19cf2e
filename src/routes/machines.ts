import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { INSTALLATION_MACHINE_VERSION, installationMachine } from '../../machines/installation.ts'
import { errorReply } from './admin-schemas.ts'

/** The machine's definition as plain JSON (functions dropped), for visualisers. */
const definitionJson = JSON.parse(
  JSON.stringify(installationMachine.definition, (_key, value) => (typeof value === 'function' ? undefined : value)),
) as Record<string, unknown>

const machineRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get('/api/machines/installation', {
    schema: {
      summary: 'The installation machine definition as JSON, for visualisers',
      response: { 200: z.object({ id: z.string(), version: z.number(), definition: z.record(z.string(), z.unknown()) }), 401: errorReply },
    },
    handler: async () => ({ id: installationMachine.id, version: INSTALLATION_MACHINE_VERSION, definition: definitionJson }),
  })
}

export default machineRoutes
