import { errors, importSPKI, jwtVerify, type CryptoKey } from 'jose'
import { z } from 'zod'
import { Errors } from '../errors.ts'
import { normalizeInstanceId, WIX_GUID } from './ids.ts'

/** A webhook as Wix signed it: the envelope's fields, with its `data` and `identity` parsed. */
export interface WixWebhookEvent {
  eventType: string
  instanceId: string
  data: Record<string, unknown>
  identity: Record<string, unknown> | null
  /** When Wix signed it (the JWT's `iat`), if it said. */
  issuedAt: Date | null
}

/**
 * Wix retries a delivery for hours, not days; retention forgets delivered ones after
 * RETENTION_WEBHOOK_DAYS (7 by default). A signed body older than this is a replay.
 */
const MAX_AGE_MS = 3 * 24 * 60 * 60_000

/** A JSON string inside the signed payload: Wix nests its event as text in text. */
const jsonText = z.string().max(64 * 1024).transform((text, ctx) => {
  try {
    const value: unknown = JSON.parse(text)
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>
  } catch { /* reported below */ }
  ctx.addIssue({ code: 'custom', message: 'must be a JSON object in a string' })
  return z.NEVER
})

const claims = z.object({ data: jsonText })
const envelope = z.object({
  eventType: z.string().min(1).max(200),
  instanceId: z.string().regex(WIX_GUID, 'must be a Wix instance id (a GUID)'),
  data: jsonText.optional(),
  identity: jsonText.optional(),
})

/**
 * Verifies Wix's webhook JWTs with the app's public key, the algorithm pinned to RS256: `none`,
 * HS256 keyed with the public key and every other algorithm are refused before any signature
 * check. A bad signature is WEBHOOK_SIGNATURE_INVALID (401); a body that is no JWT, or a signed
 * payload of the wrong shape, is WEBHOOK_MALFORMED (400).
 */
export async function createWebhookVerifier(publicKeyPem: string) {
  const key: CryptoKey = await importSPKI(publicKeyPem, 'RS256')

  return async function verify(body: unknown): Promise<WixWebhookEvent> {
    if (typeof body !== 'string' || body.trim() === '') throw new Errors.WEBHOOK_MALFORMED('the body must be a signed JWT as text')
    let payload: unknown
    try {
      ;({ payload } = await jwtVerify(body.trim(), key, { algorithms: ['RS256'] }))
    } catch (err) {
      if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) {
        throw new Errors.WEBHOOK_MALFORMED('the body is not a well-formed JWT')
      }
      if (err instanceof errors.JOSEError) throw new Errors.WEBHOOK_SIGNATURE_INVALID()
      throw err
    }
    const outer = claims.safeParse(payload)
    const inner = outer.success ? envelope.safeParse(outer.data.data) : undefined
    if (!inner?.success) {
      const issue = (inner?.error ?? (outer as { error: z.ZodError }).error).issues[0]
      throw new Errors.WEBHOOK_MALFORMED(`payload${issue?.path.length ? `.${issue.path.join('.')}` : ''} ${issue?.message ?? 'is invalid'}`)
    }
    const e = inner.data
    const iat = (payload as { iat?: unknown }).iat
    if (typeof iat === 'number' && Date.now() - iat * 1000 > MAX_AGE_MS) throw new Errors.WEBHOOK_TOO_OLD()
    return {
      eventType: e.eventType, instanceId: normalizeInstanceId(e.instanceId), data: e.data ?? {}, identity: e.identity ?? null,
      issuedAt: typeof iat === 'number' && Number.isFinite(iat) ? new Date(iat * 1000) : null,
    }
  }
}

export type WebhookVerifier = Awaited<ReturnType<typeof createWebhookVerifier>>
