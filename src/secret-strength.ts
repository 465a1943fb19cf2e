/**
 * How guessable a configured secret is, estimated from the text itself: the Shannon entropy of
 * its characters and of the steps between neighbours (so `aaaa…`, `abab…` and `abcd…` all score
 * low), times its length. A rough floor, not a proof: it refuses what a person typed in a hurry
 * and accepts anything `openssl rand` prints.
 */
export function estimatedBits(value: string | Uint8Array): number {
  const codes = typeof value === 'string' ? [...value].map((c) => c.codePointAt(0)!) : [...value]
  if (codes.length < 2) return 0
  const steps = codes.slice(1).map((c, i) => c - codes[i]!)
  return Math.min(entropy(codes), entropy(steps)) * codes.length
}

function entropy(symbols: number[]): number {
  const counts = new Map<number, number>()
  for (const s of symbols) counts.set(s, (counts.get(s) ?? 0) + 1)
  let bits = 0
  for (const n of counts.values()) bits -= (n / symbols.length) * Math.log2(n / symbols.length)
  return bits
}

const CLASSES = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/]

/** Why `value` is too weak to be a secret of at least `minLength` characters, or undefined. */
export function weakness(value: string, minLength: number, minBits: number): string | undefined {
  if (value.length < minLength) return `must be at least ${minLength} characters`
  if (CLASSES.filter((c) => c.test(value)).length < 2) return 'must mix kinds of characters (letters and digits, say)'
  if (estimatedBits(value) < minBits) return 'is too predictable (repeated or sequential characters)'
}
