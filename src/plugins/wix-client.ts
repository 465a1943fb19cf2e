import fp from 'fastify-plugin'
import { createWixClient } from '../wix/client.ts'
import { createCredentialsHealth, type CredentialsHealth } from '../wix/credentials-health.ts'

declare module 'fastify' {
  interface FastifyInstance {
    wix: ReturnType<typeof createWixClient>
    wixCredentials: CredentialsHealth
  }
}

/** The Wix API client, with its connection pool closed on shutdown, and the app credentials' health. */
export default fp(
  async (app) => {
    const { wix } = app.config
    const credentials = createCredentialsHealth({
      now: app.now,
      // Loud on purpose: every installation's token calls fail until the secret is fixed.
      onRejected: (info) => app.log.error({ endpoint: info.endpoint, grant: info.grant, status: info.status, wixRequestId: info.wixRequestId },
        'Wix refused the app\'s client credentials: WIX_APP_ID or WIX_APP_SECRET is wrong or was rotated'),
    })
    // Read at call time: the metrics plugin, when registered, comes after this one.
    const client = createWixClient({
      apiUrl: wix.apiUrl, appId: wix.appId, appSecret: wix.appSecret, log: app.log,
      onCall: (info) => {
        credentials.record(info)
        app.metrics?.wixCall(info)
      },
    })
    app.decorate('wix', client)
    app.decorate('wixCredentials', credentials)
    app.addHook('onClose', async () => client.close())
  },
  { name: 'wix-client', dependencies: ['config'] },
)
