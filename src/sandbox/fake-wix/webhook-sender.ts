import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import { request } from 'undici'
import type { FakeWix, SentWebhook } from './model-types.ts'

const MAX_SENT = 200

type WebhookSender = Pick<FakeWix, 'publicKeyPem' | 'webhooksSent' | 'signWebhook' | 'sendWebhook'>

/** Signs webhooks as Wix does, with the app's key, and posts them to the app's webhook URL. */
export function createWebhookSender(o: {
  /** PKCS#8 PEM; one is generated when none is given. */
  privateKeyPem: string | undefined; now: () => number; webhookUrl: () => string | undefined
}): WebhookSender {
  const { now } = o
  const signingKey = o.privateKeyPem
    ? createPrivateKey(o.privateKeyPem)
    : generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
  const webhooksSent: SentWebhook[] = []
  const signWebhook: FakeWix['signWebhook'] = async (eventType, instanceId, data = {}, so = {}) => {
    const event = { eventType, instanceId, data: JSON.stringify(data) }
    const jwt = new SignJWT({ data: JSON.stringify(event) })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
      // Each delivery is signed once; a retry of it is the same bytes.
      .setJti(randomUUID())
    if (so.issuedAtMs !== null) jwt.setIssuedAt(Math.floor((so.issuedAtMs ?? now()) / 1000))
    if (so.expiresAtMs !== undefined) jwt.setExpirationTime(Math.floor(so.expiresAtMs / 1000))
    return jwt.sign(signingKey)
  }
  return {
    publicKeyPem: createPublicKey(signingKey).export({ type: 'spki', format: 'pem' }).toString(),
    webhooksSent,
    signWebhook,
    async sendWebhook(eventType, instanceId, data = {}) {
      const sent: SentWebhook = { eventType, instanceId, status: 0, at: now() }
      webhooksSent.push(sent)
      if (webhooksSent.length > MAX_SENT) webhooksSent.shift()
      if (!o.webhookUrl()) return 0
      const body = await signWebhook(eventType, instanceId, data)
      try {
        const res = await request(o.webhookUrl()!, {
          method: 'POST', headers: { 'content-type': 'text/plain' }, body, headersTimeout: 5_000, bodyTimeout: 5_000,
        })
        await res.body.dump()
        sent.status = res.statusCode
      } catch { /* the app is down: Wix would retry later; the status stays 0 */ }
      return sent.status
    },
  }
}
