import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { issuesOf, wixError } from '../http.ts'
import type { Intercept } from '../intercept.ts'
import type { FakeWix } from '../model-types.ts'

/** What an access token opens: the instance lookup, token-info and the bi-event. */
export async function apiRoutes(fastify: FastifyInstance, opts: { wix: FakeWix; intercept: Intercept }): Promise<void> {
  const { wix, intercept } = opts

  /** The instance a raw access token (no `Bearer`, as on every Wix API call) belongs to. */
  const tokenInstance = (token: unknown) => {
    if (typeof token !== 'string' || /^bearer /i.test(token)) return undefined
    return wix.instanceOfToken(token)
  }

  fastify.get('/apps/v1/instance', async (req, reply) => {
    if (!(await intercept(req, reply, 'apps/v1/instance'))) return reply
    const instanceId = tokenInstance(req.headers.authorization)
    if (!instanceId) return wixError(reply, 401, 'Invalid or expired access token', { reason: 'UNAUTHENTICATED' })
    if (!wix.manageYourApp) return wixError(reply, 403, 'Missing permission: Manage Your App', { reason: 'PERMISSION_DENIED' })
    return { instance: { instanceId, appName: 'Sandbox app', isFree: true }, site: { siteDisplayName: 'Sandbox site', locale: 'en' } }
  })

  // Access and refresh tokens alike (the SDK's getTokenInfo sends either); no permission needed.
  fastify.post('/oauth2/token-info', async (req, reply) => {
    if (!(await intercept(req, reply, 'oauth2/token-info'))) return reply
    const token = (req.body as { token?: unknown } | null)?.token
    const instanceId = tokenInstance(token) ?? (typeof token === 'string' ? wix.verifyRefreshToken(token) : undefined)
    // As Wix's own example answers: `active` as a string.
    return instanceId ? { active: 'true', instanceId, clientId: wix.appId } : { active: 'false' }
  })

  fastify.post('/apps/v1/bi-event', async (req, reply) => {
    if (!(await intercept(req, reply, 'bi-event'))) return reply
    const auth = req.headers.authorization
    if (!auth) return wixError(reply, 401, 'Missing Authorization header', { reason: 'UNAUTHENTICATED' })
    if (/^bearer /i.test(auth)) {
      return wixError(reply, 401, 'Authorization must be the raw access token, without "Bearer"', { reason: 'UNAUTHENTICATED' })
    }
    if (!wix.isValidAccessToken(auth)) return wixError(reply, 401, 'Invalid or expired access token', { reason: 'UNAUTHENTICATED' })
    const b = z.object({ eventName: z.literal('APP_FINISHED_CONFIGURATION') }).safeParse(req.body)
    if (!b.success) return wixError(reply, 400, 'Unsupported event', { issues: issuesOf(b.error) })
    return {}
  })
}
