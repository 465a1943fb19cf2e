import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { Errors } from '../errors.ts'

/** Wix's webhook JWTs are a few hundred bytes to a few KiB; nothing legitimate comes near this. */
const WEBHOOK_BODY_LIMIT = 32 * 1024

const errorReply = z.object({ statusCode: z.number(), code: z.string(), error: z.string(), message: z.string() })

/**
 * `POST /wix/webhooks`: Wix posts a JWT as text. Verified, recorded and answered at once; acted on
 * after commit. Encapsulated: its text body parser applies to this route only.
 */
const webhookRoutes: FastifyPluginAsyncZod = async (app) => {
  const { webhooks } = app
  app.removeAllContentTypeParsers()
  // Wix's content type is text; whatever a sender claims, the body is read as text and must verify.
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: WEBHOOK_BODY_LIMIT }, (_request, body, done) => done(null, body))

  app.post('/wix/webhooks', {
    schema: {
      summary: "Wix's signed webhooks (AppInstalled, AppRemoved; others are recorded)",
      description: 'The body is the JWT Wix signs with the app\'s key pair (RS256), verified with WIX_PUBLIC_KEY.',
      response: {
        200: z.object({ received: z.literal(true), duplicate: z.boolean().describe('The same delivery was received before') }),
        400: errorReply, 401: errorReply, 413: errorReply, 503: errorReply,
      },
    },
    bodyLimit: WEBHOOK_BODY_LIMIT,
    handler: async (request) => {
      if (!webhooks.verify) throw new Errors.WEBHOOKS_NOT_CONFIGURED()
      const body = request.body as unknown
      const event = await webhooks.verify(body).catch((err: unknown) => {
        request.log.warn({ code: (err as { code?: string }).code }, 'webhook refused')
        throw err
      })
      const { id, duplicate } = await webhooks.processor.receive(body as string, event)
      request.log.info({ deliveryId: id, eventType: event.eventType, instanceId: event.instanceId, duplicate }, 'webhook received')
      return { received: true as const, duplicate }
    },
  })
}

export default webhookRoutes
