import type { FastifyReply, FastifyRequest } from 'fastify'
import { wixError } from './http.ts'
import type { FakeEndpoint, FakeWix, RecordedRequest } from './model-types.ts'

const MAX_RECORDED = 1_000

export type Intercept = (req: FastifyRequest, reply: FastifyReply, endpoint: FakeEndpoint) => Promise<boolean>

/** Records each call to Wix's API and plays the failure queued for it. */
export function createInterceptor(wix: FakeWix) {
  const records = new WeakMap<FastifyRequest, RecordedRequest>()
  /** Calls whose answer is to be lost once their work is done (`loseAnswer`). */
  const losing = new WeakMap<FastifyRequest, 'hold' | 'cut'>()

  /** Records the call, plays any queued failure; returns false when the failure answered. */
  const intercept: Intercept = async (req, reply, endpoint) => {
    const record: RecordedRequest = {
      endpoint, method: req.method, headers: { ...req.headers }, body: recordable(req.body), status: 0, at: wix.now(),
    }
    wix.requests.push(record)
    if (wix.requests.length > MAX_RECORDED) wix.requests.shift()
    records.set(req, record)

    const grant = (req.body as { grant_type?: unknown } | null)?.grant_type
    const f = wix.takeFailure(endpoint, typeof grant === 'string' ? grant : undefined)
    if (!f) return true
    if (f.loseAnswer) {
      losing.set(req, f.loseAnswer)
      return true
    }
    if (f.hang) {
      await wix.hold(Infinity)
      wixError(reply, 504, 'Fake Wix released a hanging request')
      return false
    }
    if (f.delayMs) await wix.hold(f.delayMs)
    if (!f.status) return true
    if (f.status === 429) reply.header('retry-after', String(f.retryAfterSeconds ?? 1))
    else if (f.retryAfterSeconds !== undefined) reply.header('retry-after', String(f.retryAfterSeconds))
    wixError(reply, f.status, f.message ?? `Injected failure ${f.status}`, { injected: true })
    return false
  }

  return {
    intercept,
    losing,
    /** Notes the status a recorded call was answered with. */
    answered(req: FastifyRequest, status: number) {
      const record = records.get(req)
      if (record) record.status = status
    },
  }
}

/** A body as recorded: kept while small and shallow, so listing calls can never fail on one. */
function recordable(body: unknown): unknown {
  if (body === undefined || body === null) return {}
  const stack: [unknown, number][] = [[body, 0]]
  let nodes = 0
  while (stack.length) {
    const [v, depth] = stack.pop()!
    if (v && typeof v === 'object') {
      if (depth > 8 || ++nodes > 500) return { unrecorded: 'body too large or too deeply nested to record' }
      for (const child of Object.values(v)) stack.push([child, depth + 1])
    }
  }
  return body
}
