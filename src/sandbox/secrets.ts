import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { SandboxSecrets } from '../config.ts'

/**
 * Sandbox mode needs no configuration, yet its tokens must still decrypt after a restart: the
 * secrets are made once and kept beside the embedded database, readable by this user only.
 */
export function loadSandboxSecrets(dataDir: string): SandboxSecrets {
  const file = join(dataDir, 'sandbox-secrets.json')
  let kept: Partial<SandboxSecrets> = {}
  try {
    kept = JSON.parse(readFileSync(file, 'utf8')) as Partial<SandboxSecrets>
  } catch { /* first start: everything is made below */ }
  const secrets: SandboxSecrets = {
    adminToken: kept.adminToken ?? randomBytes(18).toString('base64url'),
    cookieSecret: kept.cookieSecret ?? randomBytes(32).toString('base64url'),
    tokenEncryptionKey: kept.tokenEncryptionKey ?? `sandbox:${randomBytes(32).toString('base64')}`,
    appSecret: kept.appSecret ?? randomBytes(18).toString('base64url'),
    // The fake Wix signs its webhooks with this; a data dir from before webhooks gets one now.
    webhookPrivateKey: kept.webhookPrivateKey ?? generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  }
  if (Object.keys(kept).length !== Object.keys(secrets).length) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 })
  }
  return secrets
}
