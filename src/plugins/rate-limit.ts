import rateLimit from '@fastify/rate-limit'
import type { FastifyRequest, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { Errors } from '../errors.ts'

/** The open routes: anyone on the internet can reach them, and each start writes rows. */
const LIMITED_PREFIX = '/wix/'
/**
 * Wix's own webhook deliveries come from a few Wix addresses in bursts and are retried when
 * refused: an address limit would drop real events. Their JWT signature is their gate instead.
 */
const EXEMPT = new Set(['/wix/webhooks'])

/**
 * The bucket a request counts against: its address as the configured proxies report it
 * (`request.ip` follows TRUST_PROXY, so a forged X-Forwarded-For moves nobody). An IPv6 client
 * gets a whole /64, the block one subscriber holds: otherwise each of its addresses is a new bucket.
 */
export function clientBucket(ip: string): string {
  if (!ip.includes(':')) return ip
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped) return mapped[1]!
  const [head = '', tail = ''] = ip.split('%')[0]!.split('::')
  const left = head ? head.split(':') : []
  const right = ip.includes('::') && tail ? tail.split(':') : []
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  return `${groups.slice(0, 4).map((g) => Number.parseInt(g || '0', 16).toString(16)).join(':')}::/64`
}

/**
 * `RATE_LIMIT_PER_MINUTE` requests per client address per minute on every `/wix/*` route but the
 * webhooks, in one bucket per address shared by those routes (so a route added under /wix is
 * limited without any change here); past it, `429 RATE_LIMITED` with `Retry-After`. Kept in
 * this process's memory: N instances let an address make N times the limit, which is still a bound.
 */
export default fp(
  async (app) => {
    const max = app.config.rateLimitPerMinute
    if (max === 0) return
    await app.register(rateLimit, { global: false })
    const limit = app.rateLimit({
      max,
      timeWindow: 60_000,
      // Room for many distinct addresses before the oldest buckets are forgotten.
      cache: 50_000,
      keyGenerator: (request: FastifyRequest) => clientBucket(request.ip),
      onExceeded: (request: FastifyRequest, key: string) => {
        request.log.info({ code: 'RATE_LIMITED', bucket: key }, 'rate limit exceeded')
      },
      // A waiting page over the limit keeps waiting: it tries again by itself, not a dead end.
      errorResponseBuilder: (request, context) => Object.assign(new Errors.RATE_LIMITED(context.after),
        request.url.startsWith('/wix/redirect/continue') ? { continueTo: `${app.config.publicUrl}${request.url}` } : {}),
    }) as onRequestHookHandler
    app.addHook('onRoute', (route) => {
      if (!route.url.startsWith(LIMITED_PREFIX) || EXEMPT.has(route.url)) return
      route.onRequest = [limit, ...[route.onRequest ?? []].flat()]
    })
  },
  { name: 'rate-limit', dependencies: ['config', 'error-handler'] },
)
