import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { SandboxSecrets } from '../config.ts'

/**
 * Sandbox mode needs no configuration, yet its tokens must still decrypt after a restart: the
 * secrets are made once and kept beside the embedded database, readable by this user only.
 */
export function loadSandboxSecrets(dataDir: string, warn: Warn = warnOnConsole): SandboxSecrets {
  const file = join(dataDir, 'sandbox-secrets.json')
  // Whatever the database (embedded or DATABASE_URL): these are the admin token and the keys.
  makePrivate(dataDir, 0o700, warn)
  makePrivate(file, 0o600, warn)
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

type Warn = (found: { path: string; mode: string }, message: string) => void

const warnOnConsole: Warn = (found, message) => console.warn(`Warning: ${message}`, found)

/** A path group or others may enter or read is named in a warning and made this user's alone. */
function makePrivate(path: string, mode: number, warn: Warn) {
  if (process.platform === 'win32') return
  const found = statSync(path, { throwIfNoEntry: false })
  if (!found || (found.mode & 0o077) === 0) return
  const where = { path: resolve(path), mode: (found.mode & 0o777).toString(8) }
  warn(where, 'sandbox secrets: other users could read this; made it private')
  chmodSync(path, mode)
}
