import t from 'tap'
import { request } from 'undici'
import { clientBucket, NETWORK_SHARE, networkBucket } from '../src/plugins/rate-limit.ts'
import { freshDatabase } from './support/database.ts'
import { startService, type Service } from './support/service.ts'

/** The open /wix routes are rate-limited per client address, as the configured proxies report it. */

const db = await freshDatabase()
t.teardown(db.drop)

const get = async (service: Service, path: string, headers: Record<string, string> = {}) => {
  const res = await request(`${service.url}${path}`, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, json: text.startsWith('{') ? JSON.parse(text) : undefined }
}
/** The service's log lines, parsed. */
const logLines = <T>(service: Service) =>
  service.logs.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T)
const installations = async (service: Service) =>
  (await service.app.sql<{ n: number }[]>`select count(*)::int as n from wix_engine.workflows`)[0]!.n

/** `n` requests, `width` at a time; `send(i)` sends the i-th. */
async function burst(n: number, width: number, send: (i: number) => Promise<{ status: number }>) {
  const statuses: number[] = []
  for (let i = 0; i < n; i += width) {
    const wave = Array.from({ length: Math.min(width, n - i) }, (_, k) => send(i + k))
    statuses.push(...(await Promise.all(wave)).map((r) => r.status))
  }
  return statuses
}

t.test('300 install starts from one address, each with a forged X-Forwarded-For', async (t) => {
  const service = await startService(t, { db, env: { RATE_LIMIT_PER_MINUTE: '60' } })
  const before = await installations(service)
  const forged = (i: number) => ({ 'x-forwarded-for': `203.0.113.${i % 250}, 198.51.100.${i % 200}` })
  const statuses = await burst(300, 10, (i) => get(service, '/wix/install', forged(i)))
  t.equal(statuses.filter((s) => s === 302).length, 60, 'exactly the 60 a minute allows start an install')
  t.equal(statuses.filter((s) => s === 429).length, 240, 'every other one is answered 429')
  t.equal(await installations(service) - before, 60, 'and only those 60 leave an installation behind')

  const refused = await get(service, '/wix/install', { 'x-forwarded-for': '192.0.2.1' })
  t.equal(refused.status, 429, 'a new forged address is still the same client')
  t.match(refused.json, { statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests' },
    'in the service\'s error shape, with its named code')
  const wait = Number(refused.headers['retry-after'])
  t.ok(wait >= 1 && wait <= 60, `Retry-After says when to come back (${wait} s)`)
  const html = await get(service, '/wix/app-url?token=x', { accept: 'text/html' })
  t.equal(html.status, 429, 'the App URL shares the one bucket of the /wix routes')
  t.equal(await installations(service) - before, 60, 'and refused requests create nothing')

  const health = await get(service, '/healthz')
  t.equal(health.status, 200, '/healthz is not limited')
  const webhooks = await burst(5, 5, async () => {
    const res = await request(`${service.url}/wix/webhooks`, { method: 'POST', body: 'x' })
    await res.body.text()
    return { status: res.statusCode }
  })
  t.notOk(webhooks.includes(429), 'Wix\'s webhook deliveries are never refused for their address')
})

t.test('behind a trusted proxy, the address the proxy saw is the bucket', async (t) => {
  const service = await startService(t, { db, env: { RATE_LIMIT_PER_MINUTE: '5', TRUST_PROXY: '127.0.0.1' } })
  // The proxy appends the address it saw; whatever the client wrote before it is forgery.
  const viaProxy = (client: string, forged: string) => ({ 'x-forwarded-for': `${forged}, ${client}` })
  const first = await burst(8, 1, (i) => get(service, '/wix/install', viaProxy('10.0.0.7', `192.0.2.${i}`)))
  t.same(first, [302, 302, 302, 302, 302, 429, 429, 429], 'one client, whatever it forges, gets 5 a minute')
  const other = await get(service, '/wix/install', viaProxy('10.0.0.8', '10.0.0.7'))
  t.equal(other.status, 302, 'another client behind the same proxy has a bucket of its own')
  const logged = logLines<{ req?: { remoteAddress?: string } }>(service)
  t.ok(logged.some((e) => e.req?.remoteAddress === '10.0.0.8'), 'and is logged under the address the proxy saw')
})

t.test('without TRUST_PROXY, forwarding headers are not believed', async (t) => {
  const service = await startService(t, { db, env: { RATE_LIMIT_PER_MINUTE: '3' } })
  const forged = (i: number) => ({ 'x-forwarded-for': `10.1.0.${i}`, 'x-forwarded-host': 'evil.example' })
  const statuses = await burst(5, 1, (i) => get(service, '/wix/install', forged(i)))
  t.same(statuses, [302, 302, 302, 429, 429], 'every forged address counts against the real one')
  const lines = logLines<{ req?: { remoteAddress?: string; host?: string } }>(service)
  const incoming = lines.filter((e) => e.req)
  t.ok(incoming.length >= 5, 'the requests are logged')
  t.ok(incoming.every((e) => e.req!.remoteAddress === '127.0.0.1'), 'each under the socket\'s address, not a forgery')
  t.notOk(incoming.some((e) => e.req!.host === 'evil.example'), 'nor the forged host')
})

t.test('request ids are the server\'s; a client\'s is only a separate field', async (t) => {
  const service = await startService(t, { db })
  await get(service, '/healthz', { 'x-request-id': 'same-id' })
  await get(service, '/healthz', { 'x-request-id': 'same-id' })
  const lines = logLines<{ reqId?: string; req?: { clientRequestId?: string } }>(service)
  const incoming = lines.filter((e) => e.req?.clientRequestId === 'same-id')
  t.equal(incoming.length, 2, 'both requests log the id the client sent, as clientRequestId')
  t.not(incoming[0]!.reqId, incoming[1]!.reqId, 'under two different request ids')
  t.notOk(lines.some((e) => e.reqId === 'same-id'), 'and the client\'s id is never the request id')
})

t.test('an IPv6 client is one bucket for its whole /64', async (t) => {
  t.equal(clientBucket('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64', 'an address in the block')
  t.equal(clientBucket('2001:db8:1:2:ffff:ffff:ffff:fffe'), '2001:db8:1:2::/64', 'another in the same block')
  t.equal(clientBucket('2001:db8::1'), '2001:db8:0:0::/64', 'a short form expands')
  t.equal(clientBucket('::1'), '0:0:0:0::/64', 'loopback')
  t.equal(clientBucket('::ffff:192.0.2.4'), '192.0.2.4', 'an IPv4-mapped address is its IPv4 address')
  t.equal(clientBucket('192.0.2.4'), '192.0.2.4', 'IPv4 as it is')
})

t.test('a waiting page over the limit is no dead end: it tries again by itself', async (t) => {
  const service = await startService(t, { db, env: { RATE_LIMIT_PER_MINUTE: '3' } })
  const id = '00000000-0000-4000-8000-0000000000aa'
  const url = `${service.url}/wix/redirect/continue?installation=${id}`
  let page = { status: 0, body: '' }
  for (let i = 0; i < 4; i++) {
    const res = await fetch(url, { headers: { accept: 'text/html' } })
    page = { status: res.status, body: await res.text() }
  }
  t.equal(page.status, 429, 'the fourth request in a minute is limited')
  t.match(page.body, new RegExp(`http-equiv="refresh" content="10;url=${service.url}/wix/redirect/continue\\?installation=${id}"`),
    'and its page refreshes to the same waiting page after a few seconds')
  t.match(page.body, /Your installation goes on/, 'telling the owner the installation goes on')
})

t.test('many /64s of one IPv6 /48 are limited together', async (t) => {
  const service = await startService(t, { db, env: { RATE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: '127.0.0.1' } })
  const before = await installations(service)
  // One attacker's /48 holds 65,536 /64s: each request here comes from another of them.
  const from = (address: string) => ({ 'x-forwarded-for': address })
  const statuses = await burst(40, 1, (i) => get(service, '/wix/install', from(`2001:db8:5:${i.toString(16)}::1`)))
  const budget = 2 * NETWORK_SHARE
  t.equal(statuses.filter((s) => s === 302).length, budget, `the /48 starts ${budget} installs (${NETWORK_SHARE} /64s' worth), not 40`)
  t.equal(statuses.filter((s) => s === 429).length, 40 - budget, 'every other request is refused')
  t.equal(await installations(service) - before, budget, 'and only those leave an installation behind')
  const refused = await get(service, '/wix/install', from('2001:db8:5:ffff::9'))
  t.match(refused.json, { statusCode: 429, code: 'RATE_LIMITED' }, 'refused with the named code')
  t.ok(Number(refused.headers['retry-after']) >= 1, 'and a Retry-After')
  const neighbour = await get(service, '/wix/install', from('2001:db8:6::1'))
  t.equal(neighbour.status, 302, 'a client in another /48 is not held back')

  // A site owner on the waiting page, behind the same /48: limited, but no dead end.
  const id = '00000000-0000-4000-8000-0000000000ab'
  const waiting = await request(`${service.url}/wix/redirect/continue?installation=${id}`,
    { headers: { accept: 'text/html', ...from('2001:db8:5:beef::1') } })
  const body = await waiting.body.text()
  t.equal(waiting.statusCode, 429, 'the waiting page is limited with its /48')
  t.match(body, new RegExp(`http-equiv="refresh" content="10;url=${service.url}/wix/redirect/continue\\?installation=${id}"`),
    'and refreshes to itself after a few seconds')
  t.match(body, /Your installation goes on/, 'telling the owner the installation goes on')
})

t.test('IPv6 /48 buckets', async (t) => {
  t.equal(networkBucket('2001:db8:5:1234::1'), '2001:db8:5::/48', 'an address names its /48')
  t.equal(networkBucket('2001:db8::1'), '2001:db8:0::/48', 'a short form expands')
  t.equal(networkBucket('::ffff:192.0.2.4'), undefined, 'IPv4-mapped: no /48')
  t.equal(networkBucket('192.0.2.4'), undefined, 'IPv4: no /48')
})

t.test('a global cap on install starts holds whatever the number of addresses', async (t) => {
  const env = { RATE_LIMIT_PER_MINUTE: '100', RATE_LIMIT_STARTS_PER_MINUTE: '5', TRUST_PROXY: '127.0.0.1' }
  const service = await startService(t, { db, env })
  const before = await installations(service)
  const from = (i: number) => ({ 'x-forwarded-for': `198.51.100.${i}` })
  const routes = ['/wix/install', '/wix/app-url?token=t']
  const statuses = await burst(12, 1, (i) => get(service, routes[i % 2]!, from(i)))
  t.equal(statuses.filter((s) => s === 302).length, 5, 'twelve clients, one start each: 5 start, across both start routes')
  t.equal(await installations(service) - before, 5, 'and 5 installations exist')
  const refused = await get(service, '/wix/install', from(200))
  t.match(refused.json, { statusCode: 429, code: 'STARTS_LIMITED' }, 'a new client is refused with its own named code')
  t.ok(Number(refused.headers['retry-after']) >= 1, 'and told when to come back')
  const other = await get(service, '/wix/redirect/continue', from(201))
  t.equal(other.json?.code, 'FLOW_COOKIE_MISSING', 'routes that start nothing are not held back by the cap')
  t.equal(await installations(service) - before, 5, 'refused starts created nothing')
})
