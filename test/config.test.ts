import { generateKeyPairSync, randomBytes } from 'node:crypto'
import t from 'tap'
import { loadConfig } from '../src/config.ts'

/** Configuration: defaults that follow each other, and one clear line for a bad value. */

const base = {
  WIX_APP_ID: 'app',
  WIX_APP_SECRET: 'secret',
  ADMIN_TOKEN: randomBytes(24).toString('base64url'),
  COOKIE_SECRET: randomBytes(32).toString('hex'),
  TOKEN_ENCRYPTION_KEY: `k1:${randomBytes(32).toString('base64')}`,
}
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString()

t.test('PUBLIC_URL defaults to localhost on the configured port', async (t) => {
  const c = loadConfig({ ...base, PORT: '3999' })
  t.equal(c.publicUrl, 'http://localhost:3999', 'the port is followed')
  t.equal(c.redirectUrl, 'http://localhost:3999/wix/redirect', 'and so are the Redirect URL')
  t.equal(c.webhookUrl, 'http://localhost:3999/wix/webhooks', 'and the webhook URL')
  t.equal(loadConfig(base).publicUrl, 'http://localhost:3000', 'port 3000 by default')
  t.equal(loadConfig({ ...base, PORT: '3999', PUBLIC_URL: 'https://app.example/' }).publicUrl, 'https://app.example', 'a set PUBLIC_URL wins')
})

t.test('WIX_PUBLIC_KEY takes the PEM as the dashboard shows it, or base64 of it on one line', async (t) => {
  t.equal(loadConfig({ ...base, WIX_PUBLIC_KEY: rsa }).wixPublicKey, rsa, 'a PEM')
  t.equal(loadConfig({ ...base, WIX_PUBLIC_KEY: Buffer.from(rsa).toString('base64') }).wixPublicKey, rsa, 'base64 of the PEM')
  t.equal(loadConfig({ ...base, WIX_PUBLIC_KEY: rsa.replace(/\n/g, '\\n') }).wixPublicKey, rsa, 'a PEM with escaped newlines, as some env files write it')
  t.equal(loadConfig(base).wixPublicKey, undefined, 'unset outside sandbox: webhooks are off')
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const bad: [string, string, RegExp][] = [
    ['garbage', 'not a key', /^Invalid configuration: WIX_PUBLIC_KEY must be the public key PEM/],
    ['a broken PEM', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', /^Invalid configuration: WIX_PUBLIC_KEY is not a readable public key PEM$/],
    ['an EC key', ec, /^Invalid configuration: WIX_PUBLIC_KEY must be an RSA key/],
  ]
  for (const [label, value, message] of bad) t.throws(() => loadConfig({ ...base, WIX_PUBLIC_KEY: value }), { message }, `${label}: one line naming the variable`)
})
