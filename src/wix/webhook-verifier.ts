import { Buffer } from 'node:buffer'
import { createHash } from 'node:crypto'
import { compactVerify, errors, importSPKI, type CryptoKey } from 'jose'
import { z } from 'zod'
import { Errors } from '../errors.ts'
import { normalizeInstanceId, WIX_GUID } from './ids.ts'

/** A webhook as Wix signed it: the envelope's fields, with its `data` and `identity` parsed. */
export interface WixWebhookEvent {
  eventType: string
  /** A Wix instance id for the events acted on; as sent (or '') for the others, which are only recorded. */
  instanceId: string
  data: Record<string, unknown>
  identity: Record<string, unknown> | null
  /** When Wix signed it (the JWT's `iat`). */
  issuedAt: Date
  /**
   * The delivery's identity: a hash of the signed header and payload as decoded. The raw body
   * is no key: base64url lets a signature's last character and `=` padding vary without
   * changing what it signs (32 spellings of one RSA-2048 signature), and each would pass.
   */
  deliveryId: string
}

/** The event types the service acts on: their instance id must be a Wix GUID. */
export const ACTED_ON = ['AppInstalled', 'AppRemoved']

/**
 * Wix resends a delivery it got no 2xx for up to 12 times over about 47 hours; retention forgets
 * processed ones after RETENTION_WEBHOOK_DAYS (7 by default). A body signed longer ago than this
 * is no delivery but a replay.
 */
const MAX_AGE_MS = 3 * 24 * 60 * 60_000
/** Clocks differ: an `iat` this far ahead, or an `exp` this far behind, still counts as now. */
const CLOCK_SKEW_MS = 5 * 60_000

/** A JSON string inside the signed payload: Wix nests its event as text in text. */
const jsonText = z.string().max(64 * 1024).transform((text, ctx) => {
  try {
    const value: unknown = JSON.parse(text)
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>
  } catch { /* reported below */ }
  ctx.addIssue({ code: 'custom', message: 'must be a JSON object in a string' })
  return z.NEVER
})

const claims = z.object({
  data: jsonText,
  iat: z.number({ error: 'must be the signing time (a number)' }).finite(),
  exp: z.number().finite().optional(),
})
const envelope = z.object({ eventType: z.string().min(1).max(200) })
const actedOn = z.object({
  instanceId: z.string().regex(WIX_GUID, 'must be a Wix instance id (a GUID)'),
  data: jsonText.optional(),
  identity: jsonText.optional(),
})

/**
 * Verifies Wix's webhook JWTs with the app's public key, the algorithm pinned to RS256: `none`,
 * HS256 keyed with the public key and every other algorithm are refused before any signature
 * check. A bad signature is WEBHOOK_SIGNATURE_INVALID (401); a body that is no JWT, or a signed
 * payload of the wrong shape (no `iat` included), WEBHOOK_MALFORMED (400); a signing time too far
 * ahead WEBHOOK_ISSUED_IN_FUTURE and too far back WEBHOOK_TOO_OLD; a passed `exp` WEBHOOK_EXPIRED
 * (401 each). `exp` is honoured as Wix's own SDK honours it (jose's `jwtVerify`); a stored
 * delivery verified again before it is acted on (`stored`) is not held to it: it was in time when
 * Wix delivered it.
 */
export async function createWebhookVerifier(publicKeyPem: string) {
  const key: CryptoKey = await importSPKI(publicKeyPem, 'RS256')

  return async function verify(body: unknown, o: { stored?: boolean } = {}): Promise<WixWebhookEvent> {
    if (typeof body !== 'string' || body.trim() === '') throw new Errors.WEBHOOK_MALFORMED('the body must be a signed JWT as text')
    const jwt = body.trim()
    let signed: Uint8Array
    try {
      ;({ payload: signed } = await compactVerify(jwt, key, { algorithms: ['RS256'] }))
    } catch (err) {
      if (err instanceof errors.JWSInvalid) throw new Errors.WEBHOOK_MALFORMED('the body is not a well-formed JWT')
      if (err instanceof errors.JOSEError) throw new Errors.WEBHOOK_SIGNATURE_INVALID()
      throw err
    }
    let payload: unknown
    try { payload = JSON.parse(Buffer.from(signed).toString('utf8')) } catch { payload = undefined }
    const outer = claims.safeParse(payload)
    if (!outer.success) throw malformed(outer.error)
    checkTimes(outer.data, o.stored === true)
    const e = envelope.safeParse(outer.data.data)
    if (!e.success) throw malformed(e.error)
    const deliveryId = createHash('sha256')
      .update(Buffer.from(jwt.split('.')[0]!, 'base64url')).update('.').update(signed).digest('hex')
    const issuedAt = new Date(outer.data.iat * 1000)
    if (!ACTED_ON.includes(e.data.eventType)) return recordedOnly(e.data.eventType, outer.data.data, issuedAt, deliveryId)
    const a = actedOn.safeParse(outer.data.data)
    if (!a.success) throw malformed(a.error)
    return {
      eventType: e.data.eventType, instanceId: normalizeInstanceId(a.data.instanceId), data: a.data.data ?? {},
      identity: a.data.identity ?? null, issuedAt, deliveryId,
    }
  }
}

export type WebhookVerifier = Awaited<ReturnType<typeof createWebhookVerifier>>

function checkTimes(c: { iat: number; exp?: number }, stored: boolean) {
  const now = Date.now()
  if (c.iat * 1000 > now + CLOCK_SKEW_MS) throw new Errors.WEBHOOK_ISSUED_IN_FUTURE()
  // A stored delivery was young enough when Wix delivered it; one deferred for days stays genuine.
  if (!stored && now - c.iat * 1000 > MAX_AGE_MS) throw new Errors.WEBHOOK_TOO_OLD()
  if (!stored && c.exp !== undefined && c.exp * 1000 + CLOCK_SKEW_MS < now) throw new Errors.WEBHOOK_EXPIRED()
}

/**
 * An event the service does not act on: recorded and answered 200 whatever its instance id looks
 * like (a 4xx only makes Wix resend it 12 times). Its `data` is kept when it is a JSON object.
 */
function recordedOnly(eventType: string, event: Record<string, unknown>, issuedAt: Date, deliveryId: string): WixWebhookEvent {
  const id = typeof event.instanceId === 'string' ? event.instanceId.slice(0, 200) : ''
  const data = jsonText.safeParse(event.data)
  return {
    eventType, instanceId: WIX_GUID.test(id) ? normalizeInstanceId(id) : id,
    data: data.success ? data.data : {}, identity: null, issuedAt, deliveryId,
  }
}

function malformed(error: z.ZodError) {
  const issue = error.issues[0]
  return new Errors.WEBHOOK_MALFORMED(`payload${issue?.path.length ? `.${issue.path.join('.')}` : ''} ${issue?.message ?? 'is invalid'}`)
}
