import t from 'tap'
import { serializerCompiler as zodSerializerCompiler } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { errorReply } from '../src/routes/admin-schemas.ts'
import { responseSerializerCompiler } from '../src/routes/serializer.ts'
import { installationSchema, installationWithHistorySchema } from '../src/installation/view.ts'

/**
 * Replies go out through fast-json-stringify, compiled from the routes' zod schemas: byte for
 * byte what the zod serialiser wrote, and, like it, nothing the schema does not name.
 */

type Schema = Parameters<typeof responseSerializerCompiler>[0]['schema']
const route = (schema: Schema) => ({ schema, method: 'GET', url: '/x', httpStatus: '200' })
const fast = (schema: Schema) => responseSerializerCompiler(route(schema))
const zod = (schema: Schema) => zodSerializerCompiler(route(schema) as never) as (data: unknown) => string

const at = new Date('2026-12-04T23:21:30.885Z')
const SECRET = 'refresh-token-never-sent'

const installation = {
  id: '3f1c2a3b-4d5e-4f00-9a8b-7c6d5e4f3a2b', instanceId: '6f1c2a3b-4d5e-0f00-9a8b-7c6d5e4f3a2b', claimedInstanceId: null,
  instanceVerified: true, instanceNote: null, state: 'SetupIncomplete', statePath: 'SetupIncomplete.waiting', origin: 'app-url',
  originInstanceId: null, cloned: null, supersededBy: null, failure: null, lastError: null, machineVersion: 3, version: 7,
  createdAt: at, updatedAt: at,
}
const failed = {
  ...installation, state: 'ExchangeFailed', statePath: 'ExchangeFailed', instanceId: null, claimedInstanceId: '6f1c2a3b-4d5e-0f00-9a8b-7c6d5e4f3a2b',
  instanceVerified: false, instanceNote: 'claimed by its Redirect URL, not confirmed by Wix', origin: 'webhook', originInstanceId: 'a-b', cloned: 'cloned from a-b',
  failure: { reason: 'exchange_refused', detail: 'Wix refused the code exchange (400): "quoted", \\ and \u2028' },
  // As the machine keeps it: fields the reply does not show, one of them a secret.
  lastError: { code: 'WIX_REJECTED', message: 'Wix refused', status: 400, retryable: false, endpoint: 'oauth/access', refreshToken: SECRET },
}

t.test('an installation, a failed one, one with history: the bytes the zod serialiser wrote', async (t) => {
  for (const [label, data] of [['waiting', installation], ['failed', failed]] as const) {
    t.equal(fast(installationSchema)(data), zod(installationSchema)(data), `${label}: the same bytes`)
  }
  const withHistory = {
    ...failed, supersedes: ['x', 'y'],
    history: [
      { seq: 1, event: 'xstate.init', data: { input: { origin: 'app-url', nested: [1, null, { a: 'b' }] } }, from: null, to: 'AppUrlHit', source: 'route:app-url', at },
      { seq: 2, event: 'CODE_RECEIVED', data: { code: '[redacted]' }, from: 'Authorizing', to: 'CodeReceived', source: 'route:redirect', at },
    ],
    effectAttempts: [
      { effect: 'exchangeCode', attempt: 1, outcome: 'retry', startedAt: at, finishedAt: at, wixRequestId: 'r-1',
        error: { code: 'WIX_UNAVAILABLE', message: 'Wix failed', status: 503, retryable: true, endpoint: 'oauth/access', token: SECRET } },
      { effect: 'exchangeCode', attempt: 2, outcome: 'ok', startedAt: null, finishedAt: at, error: null, wixRequestId: null },
    ],
  }
  t.equal(fast(installationWithHistorySchema)(withHistory), zod(installationWithHistorySchema)(withHistory), 'with history and attempts: the same bytes')
  const page = z.object({ items: z.array(installationSchema), nextCursor: z.string().nullable() })
  const list = { items: [installation, failed, installation], nextCursor: 'WyJ1Il0' }
  t.equal(fast(page)(list), zod(page)(list), 'a list page: the same bytes')
})

t.test('nothing the schema does not name is written, however deep', async (t) => {
  const out = fast(installationSchema)({ ...failed, refreshToken: SECRET })
  t.notOk(out.includes(SECRET), 'neither a field added beside the schema\'s nor one inside a nullable object')
  t.same(Object.keys(JSON.parse(out).lastError), ['code', 'message', 'status'], 'the error shows what its schema names')
  const error = { statusCode: 409, code: 'STATE_ALREADY_USED', error: 'Conflict', message: 'used', installationId: 'x', continueTo: 'https://x' }
  t.equal(fast(errorReply)(error), zod(errorReply)(error), 'an error reply: the same bytes, its extra fields dropped')
  // A union is a branch picked by validating the value: a field more must not fail it.
  const either = z.object({ result: z.union([z.object({ kind: z.literal('a'), x: z.string() }), z.object({ kind: z.literal('b'), n: z.number() })]) })
  const b = { result: { kind: 'b', n: 1, token: SECRET } }
  t.equal(fast(either)(b), zod(either)(b), 'a union\'s branch with a field more: the same bytes, the field dropped')
})

t.test('a schema JSON Schema cannot state keeps the zod serialiser', async (t) => {
  const odd = z.object({ m: z.map(z.string(), z.number()) })
  t.equal(fast(odd)({ m: new Map([['a', 1]]) }), '{"m":{}}', 'a Map, as JSON.stringify writes one after zod')
  const plain = z.object({ at: z.date(), tags: z.record(z.string(), z.unknown()) })
  const data = { at, tags: { a: 1, b: [true, null] } }
  t.equal(fast(plain)(data), zod(plain)(data), 'dates and records: the same bytes')
})
