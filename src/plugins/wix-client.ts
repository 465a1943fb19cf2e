import fp from 'fastify-plugin'
import { createWixClient } from '../wix/client.ts'

declare module 'fastify' {
  interface FastifyInstance {
    wix: ReturnType<typeof createWixClient>
  }
}

/** The Wix API client, with its connection pool closed on shutdown. */
export default fp(
  async (app) => {
    const { wix } = app.config
    const client = createWixClient({ apiUrl: wix.apiUrl, appId: wix.appId, appSecret: wix.appSecret, log: app.log })
    app.decorate('wix', client)
    app.addHook('onClose', async () => client.close())
  },
  { name: 'wix-client', dependencies: ['config'] },
)
