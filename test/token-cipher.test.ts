import { randomBytes } from 'node:crypto'
import t from 'tap'
import { createTokenCipher, parseCipherKeys } from '../src/crypto/token-cipher.ts'

/** Tokens at rest: AES-256-GCM, each value naming its key, each with an IV of its own. */

const key = (id: string) => `${id}:${randomBytes(32).toString('base64')}`

t.test('what is sealed opens again, and only unaltered', async (t) => {
  const cipher = createTokenCipher(parseCipherKeys(key('k1')))
  const sealed = cipher.encrypt('refresh-token-ä')
  t.match(sealed, /^v1\.k1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/, 'v1, the key id, a 96-bit IV, the data with its tag')
  t.notMatch(sealed, /refresh-token/, 'nothing of the plaintext shows')
  t.equal(cipher.decrypt(sealed), 'refresh-token-ä', 'it opens to what was sealed')
  const [v, id, iv, data] = sealed.split('.')
  const flipped = Buffer.from(data!, 'base64url')
  flipped[0]! ^= 1
  t.throws(() => cipher.decrypt([v, id, iv, flipped.toString('base64url')].join('.')), 'a flipped bit fails the tag')
  t.throws(() => cipher.decrypt([v, 'k2', iv, data].join('.')), /key "k2", which is not configured/, 'an unknown key is named')
})

t.test('every value gets an IV of its own, across many refills of the IV pool', async (t) => {
  const cipher = createTokenCipher(parseCipherKeys(key('k1')))
  const ivs = new Set<string>()
  const n = 5_000
  for (let i = 0; i < n; i++) ivs.add(cipher.encrypt('same plaintext').split('.')[2]!)
  t.equal(ivs.size, n, `${n} encryptions, ${n} distinct IVs`)
  const other = createTokenCipher(parseCipherKeys(key('k1')))
  t.notOk(ivs.has(other.encrypt('same plaintext').split('.')[2]!), 'and another cipher draws its own')
})

t.test('keys rotate: new values take the first key, old ones open with theirs', async (t) => {
  const old = key('old')
  const before = createTokenCipher(parseCipherKeys(old)).encrypt('t-1')
  const rotated = createTokenCipher(parseCipherKeys(`${key('new')},${old}`))
  t.equal(rotated.decrypt(before), 't-1', 'a value sealed with the old key still opens')
  t.match(rotated.encrypt('t-2'), /^v1\.new\./, 'a new value is sealed with the new key')
})
