import { generateKeyPairSync, randomBytes } from 'node:crypto'
import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.ts'

/** Configuration that would leave a door open is refused at start, in one line naming the variable. */

const strong = () => ({
  WIX_APP_ID: 'app',
  WIX_APP_SECRET: 'secret',
  ADMIN_TOKEN: randomBytes(24).toString('base64url'),
  COOKIE_SECRET: randomBytes(32).toString('hex'),
  TOKEN_ENCRYPTION_KEY: `k1:${randomBytes(32).toString('base64')}`,
})

const b64 = (text: string) => Buffer.from(text).toString('base64')

const refusal = (env: Record<string, string>) => {
  try {
    loadConfig(env)
    return undefined
  } catch (err) {
    return err instanceof ConfigError ? err.message : `not a ConfigError: ${String(err)}`
  }
}

t.test('weak secrets are refused', async (t) => {
  t.equal(refusal(strong()), undefined, 'random secrets of the documented sizes are accepted')
  const cases: [string, string, RegExp][] = [
    ['ADMIN_TOKEN', 'a'.repeat(24), /^Invalid configuration: ADMIN_TOKEN must mix kinds of characters/],
    ['ADMIN_TOKEN', 'abcdefghijklmnopqrstuvwxyz', /^Invalid configuration: ADMIN_TOKEN must mix kinds/],
    ['ADMIN_TOKEN', 'Passw0rdPassw0rdPassw0rd', /^Invalid configuration: ADMIN_TOKEN is too predictable/],
    ['ADMIN_TOKEN', 'a1'.repeat(20), /^Invalid configuration: ADMIN_TOKEN is too predictable/],
    ['ADMIN_TOKEN', 'Short1', /^Invalid configuration: ADMIN_TOKEN must be at least 24 characters/],
    ['COOKIE_SECRET', 'x'.repeat(40), /^Invalid configuration: COOKIE_SECRET must mix kinds/],
    ['COOKIE_SECRET', `${randomBytes(32).toString('hex')},${'ab12'.repeat(10)}`,
      /^Invalid configuration: COOKIE_SECRET is too predictable/],
    ['TOKEN_ENCRYPTION_KEY', `k1:${Buffer.alloc(32).toString('base64')}`,
      /^Invalid configuration: TOKEN_ENCRYPTION_KEY key k1 is not random enough/],
    ['TOKEN_ENCRYPTION_KEY', `k1:${randomBytes(32).toString('base64')},old:${b64('0123456789abcdef'.repeat(2))}`,
      /TOKEN_ENCRYPTION_KEY key old is not random enough/],
  ]
  for (const [name, value, expected] of cases) {
    const message = refusal({ ...strong(), [name]: value })
    t.match(message, expected, `${name}=${value.slice(0, 12)}… is refused`)
    t.notOk(message?.includes(value), 'without echoing the value')
    t.notOk(message?.includes('\n'), 'in one line')
  }
})

t.test('sandbox-generated secrets always pass', async (t) => {
  t.match(refusal({}), /ADMIN_TOKEN is required/, 'sandbox mode without generated secrets is refused')
  // The same shapes as src/sandbox/secrets.ts makes; many draws, so a rare weak one would show.
  // A key pair is slow to make and not a secret whose strength is checked here: one for all draws.
  const webhookPrivateKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  for (let i = 0; i < 2000; i++) {
    const config = (() => {
      try {
        return loadConfig({}, () => ({
          adminToken: randomBytes(18).toString('base64url'),
          cookieSecret: randomBytes(32).toString('base64url'),
          tokenEncryptionKey: `sandbox:${randomBytes(32).toString('base64')}`,
          appSecret: randomBytes(18).toString('base64url'),
          webhookPrivateKey,
        }))
      } catch (err) {
        return err as Error
      }
    })()
    if (config instanceof Error) {
      t.fail(`a generated secret was refused: ${config.message}`)
      return
    }
  }
  t.pass('2000 sets of generated secrets were all accepted')
})

t.test('rate limit, proxies, retention', async (t) => {
  const base = strong()
  const c = loadConfig(base)
  const refused = (env: Record<string, string>, name: string, rest = '') => t.match(
    refusal({ ...base, ...env }),
    new RegExp(`^Invalid configuration: ${name} ${rest}`),
    `${JSON.stringify(env)} is refused, naming ${name}`,
  )
  t.equal(c.rateLimitPerMinute, 120, 'RATE_LIMIT_PER_MINUTE defaults to 120')
  t.equal(c.trustProxy, false, 'no proxy is trusted by default')
  t.equal(loadConfig({ ...base, RATE_LIMIT_PER_MINUTE: '0' }).rateLimitPerMinute, 0, '0 turns limiting off')
  refused({ RATE_LIMIT_PER_MINUTE: '-1' }, 'RATE_LIMIT_PER_MINUTE')
  t.equal(loadConfig({ ...base, TRUST_PROXY: '2' }).trustProxy, 2, 'a hop count')
  const list = loadConfig({ ...base, TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,loopback,::1' }).trustProxy
  t.same(list, ['10.0.0.0/8', '127.0.0.1', 'loopback', '::1'], 'a list of addresses, CIDRs and names')
  refused({ TRUST_PROXY: '10.0.0.0/99' }, 'TRUST_PROXY', 'must be a hop count, true, or addresses')
  refused({ TRUST_PROXY: 'my-proxy.internal' }, 'TRUST_PROXY', '.*my-proxy\\.internal')
  const day = 86_400_000
  const defaults = {
    historyMs: 90 * day, failedMs: 30 * day, abandonedMs: day, webhooksMs: 7 * day, intervalMs: 60 * 60_000,
  }
  t.same(c.retention, defaults, 'retention defaults')
  refused({ RETENTION_FAILED_DAYS: 'soon' }, 'RETENTION_FAILED_DAYS', 'must be a number$')
  refused({ RETENTION_INTERVAL_MINUTES: '0' }, 'RETENTION_INTERVAL_MINUTES')
})
