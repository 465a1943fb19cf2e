import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { SandboxSecrets } from '../config.ts'

/**
 * Sandbox mode needs no configuration, yet its tokens must still decrypt after a restart: the
 * secrets are made once and kept beside the embedded database, readable by this user only.
 */
export function loadSandboxSecrets(dataDir: string): SandboxSecrets {
  const file = join(dataDir, 'sandbox-secrets.json')
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SandboxSecrets
  } catch {
    const secrets: SandboxSecrets = {
      adminToken: randomBytes(18).toString('base64url'),
      cookieSecret: randomBytes(32).toString('base64url'),
      tokenEncryptionKey: `sandbox:${randomBytes(32).toString('base64')}`,
      appSecret: randomBytes(18).toString('base64url'),
    }
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 })
    return secrets
  }
}
