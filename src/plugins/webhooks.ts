import fp from 'fastify-plugin'
import { createInstallationLifecycle } from '../installation/lifecycle.ts'
import { createWebhookProcessor, type WebhookProcessor } from '../webhooks/processor.ts'
import { createWebhookVerifier, type WebhookVerifier } from '../wix/webhook-verifier.ts'

declare module 'fastify' {
  interface FastifyInstance {
    webhooks: { verify: WebhookVerifier | undefined; processor: WebhookProcessor }
  }
}

/** Wix's signed lifecycle webhooks: the verifier (when a public key is set) and their processor. */
export default fp(
  async (app) => {
    const { config, engine, sql, vault, log } = app
    const verify = config.wixPublicKey ? await createWebhookVerifier(config.wixPublicKey) : undefined
    if (!verify) log.warn('WIX_PUBLIC_KEY is not set: POST /wix/webhooks answers 503 until it is (AppInstalled and AppRemoved go unheard)')
    const lifecycle = createInstallationLifecycle({ engine, sql, vault, config })
    const processor = createWebhookProcessor({ sql, lifecycle, log, verify })
    app.decorate('webhooks', { verify, processor })
    app.addHook('onReady', async () => processor.start())
    app.addHook('onClose', async () => processor.stop())
  },
  { name: 'webhooks', dependencies: ['engine'] },
)
