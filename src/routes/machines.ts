import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { INSTALLATION_MACHINE_VERSION, installationMachine } from '../../machines/installation.ts'
import { definitionJson } from '../engine/index.ts'
import { errorReply } from './admin-schemas.ts'

const definition = definitionJson(installationMachine)

const machineRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get('/api/machines/installation', {
    schema: {
      summary: 'The installation machine definition as JSON, for visualisers',
      response: { 200: z.object({ id: z.string(), version: z.number(), definition: z.record(z.string(), z.unknown()) }), 401: errorReply },
    },
    handler: async () => ({ id: installationMachine.id, version: INSTALLATION_MACHINE_VERSION, definition }),
  })
}

export default machineRoutes
