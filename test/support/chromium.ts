import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import { loadSandboxSecrets } from '../../src/sandbox/secrets.ts'
import { freshDatabase } from './database.ts'
import { freePort } from './service.ts'

/** Debian's Chromium, as `.ci/run` installs it. */
export const CHROMIUM = '/usr/bin/chromium'
export const hasChromium = () => existsSync(CHROMIUM)
export const missingChromium = `Chromium is not installed at ${CHROMIUM}: run \`apt-get install -y chromium\` (as root) to run the browser test`

interface Teardown {
  teardown(fn: () => unknown): void
}

/**
 * The service in sandbox mode in-process (its fake Wix served by the app itself, on a real port)
 * and a headless Chromium, launched with the flags this machine's closed network wants.
 */
export async function sandboxInChromium(t: Teardown, name: string) {
  const db = await freshDatabase()
  t.teardown(db.drop)
  const dir = await mkdtemp(join(tmpdir(), `wie-${name}-`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))

  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const adminToken = randomBytes(18).toString('base64url')
  const config = loadConfig({ PUBLIC_URL: url, DATA_DIR: dir }, () => ({ ...loadSandboxSecrets(dir), adminToken }))
  const app = await buildApp({ config, sql: db.sql, engine: { pollMs: 50 }, logger: false })
  await app.listen({ host: '127.0.0.1', port })
  t.teardown(() => app.close())

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  })
  t.teardown(() => browser.close())
  return { url, adminToken, dir, browser }
}
