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

/** The first `count` groups of an IPv6 address, `::/bits` appended; undefined for IPv4 (mapped too). */
function ipv6Prefix(ip: string, count: number): string | undefined {
  if (!ip.includes(':') || /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip)) return undefined
  const [head = '', tail = ''] = ip.split('%')[0]!.split('::')
  const left = head ? head.split(':') : []
  const right = ip.includes('::') && tail ? tail.split(':') : []
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  return `${groups.slice(0, count).map((g) => Number.parseInt(g || '0', 16).toString(16)).join(':')}::/${count * 16}`
}

/**
 * The bucket a request counts against: its address as the configured proxies report it
 * (`request.ip` follows TRUST_PROXY, so a forged X-Forwarded-For moves nobody). An IPv6 client
 * gets a whole /64, the block one subscriber holds: otherwise each of its addresses is a new bucket.
 */
export function clientBucket(ip: string): string {
  return ipv6Prefix(ip, 4) ?? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1] ?? ip
}

/**
 * An IPv6 client's /48, the block one site is commonly given: it holds 65,536 /64s, so each of
 * them having its own bucket would be no limit at all. Undefined for IPv4.
 */
export const networkBucket = (ip: string): string | undefined => ipv6Prefix(ip, 3)

/** A /48 may hold a few subscribers behind one router: it gets this many /64s' worth. */
export const NETWORK_SHARE = 8

/** The routes that start an installation, writing its rows before anyone has signed anything. */
const START_ROUTES = new Set(['/wix/app-url', '/wix/install'])

/**
 * `RATE_LIMIT_PER_MINUTE` requests per client address per minute on every `/wix/*` route but the
 * webhooks, in one bucket per address shared by those routes (so a route added under /wix is
 * limited without any change here); an IPv6 client's /48 gets `NETWORK_SHARE` times that; past
 * either, `429 RATE_LIMITED` with `Retry-After`. Starts (`/wix/app-url`, `/wix/install`) are capped
 * at `RATE_LIMIT_STARTS_PER_MINUTE` for all clients together (`429 STARTS_LIMITED`): however many
 * addresses a flood comes from, it writes that many installations a minute at most. Kept in this
 * process's memory: N instances let through N times each limit, which is still a bound.
 */
export default fp(
  async (app) => {
    const max = app.config.rateLimitPerMinute
    if (max === 0) return
    // A waiting page over any limit keeps waiting: it tries again by itself, not a dead end.
    const keepWaiting = <E extends Error>(request: FastifyRequest, refusal: E) =>
      request.url.startsWith('/wix/redirect/continue') ? Object.assign(refusal, { continueTo: `${app.config.publicUrl}${request.url}` }) : refusal
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
      errorResponseBuilder: (request, context) => keepWaiting(request, new Errors.RATE_LIMITED(context.after)),
    }) as onRequestHookHandler
    // @fastify/rate-limit runs one of its hooks per request: the coarser buckets are checked here.
    // Its store takes `cache` as the main limiter's does; the option's type does not list it.
    const roomy = { cache: 50_000 }
    const network = app.createRateLimit({
      max: max * NETWORK_SHARE, timeWindow: 60_000, ...roomy,
      keyGenerator: (request: FastifyRequest) => networkBucket(request.ip) ?? '',
    })
    const startsMax = app.config.rateLimitStartsPerMinute
    const starts = app.createRateLimit({ max: startsMax, timeWindow: 60_000, keyGenerator: () => 'starts' })
    const coarse: onRequestHookHandler = async (request, reply) => {
      const isStart = START_ROUTES.has(request.routeOptions.url ?? '')
      const checks = [
        { on: networkBucket(request.ip) !== undefined, check: network, Refusal: Errors.RATE_LIMITED },
        { on: isStart && startsMax > 0, check: starts, Refusal: Errors.STARTS_LIMITED },
      ]
      for (const { on, check, Refusal } of checks) {
        if (!on) continue
        const result = await check(request)
        if (result.isAllowed || !result.isExceeded) continue
        const refusal = keepWaiting(request, new Refusal(`${result.ttlInSeconds} seconds`))
        request.log.info({ code: refusal.code, bucket: result.key }, 'rate limit exceeded')
        reply.header('retry-after', String(result.ttlInSeconds))
        throw refusal
      }
    }
    app.addHook('onRoute', (route) => {
      if (!route.url.startsWith(LIMITED_PREFIX) || EXEMPT.has(route.url)) return
      route.onRequest = [limit, coarse, ...[route.onRequest ?? []].flat()]
    })
  },
  { name: 'rate-limit', dependencies: ['config', 'error-handler'] },
)
