import t from 'tap'
import { persistently, retry } from '../src/engine/index.ts'

/** The one retry loop every caller uses: it stops where its policy, its filter, its signal or its deadline say. */

const blip = () => Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' })
const fast = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 2 }

t.test('a blip is tried again until it passes; the try count is told', async (t) => {
  const seen: number[] = []
  const result = await retry(async (n) => {
    seen.push(n)
    if (n < 3) throw blip()
    return 'done'
  }, { policy: fast, retryIf: () => true })
  t.equal(result, 'done')
  t.same(seen, [1, 2, 3], 'three tries, numbered')
})

t.test('it gives up with the last failure: spent tries, a failure not to retry, an abort, a deadline', async (t) => {
  let calls = 0
  const failing = async () => {
    calls++
    throw blip()
  }
  await t.rejects(retry(failing, { policy: fast, retryIf: () => true }), { code: 'ECONNREFUSED' })
  t.equal(calls, 4, 'no more than the policy allows')

  calls = 0
  await t.rejects(retry(failing, { policy: fast, retryIf: () => false }), { code: 'ECONNREFUSED' })
  t.equal(calls, 1, 'a failure not worth retrying is thrown at once')

  calls = 0
  const abort = new AbortController()
  const slow = { maxAttempts: 10, baseDelayMs: 60_000, maxDelayMs: 60_000 }
  const waiting = retry(failing, { policy: slow, retryIf: () => true, signal: abort.signal })
  setTimeout(() => abort.abort('shutdown'), 20)
  await t.rejects(waiting, { code: 'ECONNREFUSED' })
  t.equal(calls, 1, 'an abort during the wait starts no further try')

  calls = 0
  const retries: number[] = []
  await t.rejects(retry(failing, {
    policy: slow, retryIf: () => true, giveUpAt: Date.now() + 30, onRetry: (_e, _n, ms) => retries.push(ms),
  }), { code: 'ECONNREFUSED' })
  t.equal(calls, 2, 'one more try at the deadline, then none')
  t.ok(retries[0]! <= 30, 'the wait is cut to the deadline, not the policy\'s minute')
})

t.test('persistently: an effect\'s write rides out a database blip, and never starts after its run was aborted', async (t) => {
  let calls = 0
  t.equal(await persistently(async () => (++calls < 2 ? Promise.reject(blip()) : 'kept')), 'kept')
  t.equal(calls, 2)
  const abort = new AbortController()
  abort.abort(new Error('taken over'))
  calls = 0
  await t.rejects(persistently(async () => ++calls, { signal: abort.signal }), /taken over/)
  t.equal(calls, 0, 'an aborted run writes nothing')
  await t.rejects(persistently(async () => {
    calls++
    throw Object.assign(new Error('syntax'), { code: '42601' })
  }), { code: '42601' })
  t.equal(calls, 1, 'a failure that is not a blip is not repeated')
})
