import { randomBytes } from 'node:crypto'
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
    ['COOKIE_SECRET', `${randomBytes(32).toString('hex')},${'ab12'.repeat(10)}`, /^Invalid configuration: COOKIE_SECRET is too predictable/],
    ['TOKEN_ENCRYPTION_KEY', `k1:${Buffer.alloc(32).toString('base64')}`, /^Invalid configuration: TOKEN_ENCRYPTION_KEY key k1 is not random enough/],
    ['TOKEN_ENCRYPTION_KEY', `k1:${randomBytes(32).toString('base64')},old:${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`, /TOKEN_ENCRYPTION_KEY key old is not random enough/],
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
  for (let i = 0; i < 2000; i++) {
    const config = (() => {
      try {
        return loadConfig({}, () => ({
          adminToken: randomBytes(18).toString('base64url'),
          cookieSecret: randomBytes(32).toString('base64url'),
          tokenEncryptionKey: `sandbox:${randomBytes(32).toString('base64')}`,
          appSecret: randomBytes(18).toString('base64url'),
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
  t.equal(c.rateLimitPerMinute, 120, 'RATE_LIMIT_PER_MINUTE defaults to 120')
  t.equal(c.trustProxy, false, 'no proxy is trusted by default')
  t.equal(loadConfig({ ...base, RATE_LIMIT_PER_MINUTE: '0' }).rateLimitPerMinute, 0, '0 turns limiting off')
  t.match(refusal({ ...base, RATE_LIMIT_PER_MINUTE: '-1' }), /^Invalid configuration: RATE_LIMIT_PER_MINUTE/, 'a negative limit is refused')
  t.equal(loadConfig({ ...base, TRUST_PROXY: '2' }).trustProxy, 2, 'a hop count')
  t.same(loadConfig({ ...base, TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,loopback,::1' }).trustProxy, ['10.0.0.0/8', '127.0.0.1', 'loopback', '::1'], 'a list of addresses, CIDRs and names')
  t.match(refusal({ ...base, TRUST_PROXY: '10.0.0.0/99' }), /^Invalid configuration: TRUST_PROXY must be a hop count, true, or addresses/, 'a bad CIDR is refused')
  t.match(refusal({ ...base, TRUST_PROXY: 'my-proxy.internal' }), /^Invalid configuration: TRUST_PROXY .*my-proxy\.internal/, 'a host name is refused')
  t.same(c.retention, { historyMs: 90 * 86_400_000, failedMs: 30 * 86_400_000, abandonedMs: 86_400_000, webhooksMs: 7 * 86_400_000, intervalMs: 3_600_000 }, 'retention defaults')
  t.match(refusal({ ...base, RETENTION_FAILED_DAYS: 'soon' }), /^Invalid configuration: RETENTION_FAILED_DAYS must be a number$/, 'a bad age is one clear line')
  t.match(refusal({ ...base, RETENTION_INTERVAL_MINUTES: '0' }), /^Invalid configuration: RETENTION_INTERVAL_MINUTES/, 'the sweep must run at some interval')
})
