import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { safeEqual } from '../../../crypto/oauth-state.ts'
import { APP_TOKEN_TTL_SECONDS } from '../grants.ts'
import { GUID, issuesOf, wixError } from '../http.ts'
import type { Intercept } from '../intercept.ts'
import type { FakeWix } from '../model-types.ts'

const clientCredentialsBody = z.object({
  grant_type: z.literal('client_credentials'),
  client_id: z.string(),
  client_secret: z.string(),
  instance_id: z.string().regex(GUID),
})

const accessBody = z.discriminatedUnion('grant_type', [
  z.object({ grant_type: z.literal('authorization_code'), client_id: z.string(), client_secret: z.string(), code: z.string().min(1) }),
  z.object({ grant_type: z.literal('refresh_token'), client_id: z.string(), client_secret: z.string(), refresh_token: z.string().min(1) }),
])

export interface OAuthOptions {
  wix: FakeWix
  intercept: Intercept
  /** Calls whose answer is to be lost once their work is done (`loseAnswer`). */
  losing: WeakMap<FastifyRequest, 'hold' | 'cut'>
  /** Codes whose exchange is followed by AppInstalled (`appInstalledOnApprove: 'after'`), by instance. */
  afterExchange: Map<string, string>
}

/** Where the app trades its client secret for tokens: codes and refreshes, client credentials. */
export async function oauthRoutes(fastify: FastifyInstance, opts: OAuthOptions): Promise<void> {
  const { wix, intercept, losing, afterExchange } = opts
  const clientAccepted = (b: { client_id: string; client_secret: string }) =>
    !wix.secretRotated && safeEqual(b.client_id, wix.appId) && safeEqual(b.client_secret, wix.appSecret)
  const refuseClient = (reply: FastifyReply) => wix.wrongSecretStatus === 401
    ? wixError(reply, 401, 'Invalid client credentials', { reason: 'INVALID_CLIENT' })
    : wixError(reply, wix.wrongSecretStatus, wix.wrongSecretStatus === 403 ? 'Forbidden' : 'Bad request')

  fastify.post('/oauth/access', async (req, reply) => {
    if (!(await intercept(req, reply, 'oauth/access'))) return reply
    const b = accessBody.safeParse(req.body)
    if (!b.success) return wixError(reply, 400, 'Invalid request body', { issues: issuesOf(b.error) })
    if (!clientAccepted(b.data)) return refuseClient(reply)
    if (b.data.grant_type === 'refresh_token') {
      const instanceId = wix.verifyRefreshToken(b.data.refresh_token)
      if (!instanceId) return wixError(reply, wix.instanceRefusalStatus, 'Invalid refresh token', { reason: 'INVALID_REFRESH_TOKEN' })
      return wix.mintTokens(instanceId, b.data.refresh_token)
    }
    const c = wix.issuedCodes.get(b.data.code)
    if (!c) return wixError(reply, 400, 'Invalid authorization code', { reason: 'INVALID_CODE' })
    if (c.used) return wixError(reply, 400, 'Authorization code was already used', { reason: 'CODE_USED' })
    if (wix.now() >= c.expiresAt) return wixError(reply, 400, 'Authorization code expired', { reason: 'CODE_EXPIRED' })
    c.used = true
    const tokens = wix.mintTokens(c.instanceId)
    const installed = afterExchange.get(b.data.code)
    if (installed) {
      afterExchange.delete(b.data.code)
      // Once this answer is on its way: the browser's flow is past the Redirect URL.
      reply.raw.once('finish', () => void wix.sendWebhook('AppInstalled', installed, { appId: wix.appId, originInstanceId: '' }))
    }
    const lost = losing.get(req)
    if (lost === 'cut') {
      req.raw.socket.destroy()
      return reply
    }
    if (lost === 'hold') {
      await wix.hold(Infinity)
      return wixError(reply, 504, 'Fake Wix released a call whose answer it had lost')
    }
    return tokens
  })

  fastify.post('/oauth2/token', async (req, reply) => {
    if (!(await intercept(req, reply, 'oauth2/token'))) return reply
    const b = clientCredentialsBody.safeParse(req.body)
    if (!b.success) return wixError(reply, 400, 'Invalid request body', { issues: issuesOf(b.error) })
    if (!clientAccepted(b.data)) return refuseClient(reply)
    const instanceId = b.data.instance_id.toLowerCase()
    if (!wix.isInstalled(instanceId)) {
      return wixError(reply, wix.instanceRefusalStatus, 'The app is not installed on this instance', { reason: 'APP_NOT_INSTALLED' })
    }
    return { access_token: wix.mintAppToken(instanceId), token_type: 'Bearer', expires_in: APP_TOKEN_TTL_SECONDS }
  })
}
