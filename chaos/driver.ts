import { request } from 'undici'

/** What the driver saw: every answer's status and when, and the OAuth states it carried. */
export interface Observations {
  responses: { at: number; status: number; route: string }[]
  networkErrors: number
  states: string[]
  outcomes: Record<string, number>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * One site owner's browser through the whole flow, while servers die under it: a request that
 * hits a dead process is sent again (to either instance), as a browser's reload would.
 */
export async function drive(i: number, urls: string[], fakeUrl: string, seen: Observations, random: () => number) {
  const jar = new Map<string, string>()
  const pick = () => urls[Math.floor(random() * urls.length)]!
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ')

  async function get(pathOrUrl: string, route: string, base?: string): Promise<{ status: number; location?: string }> {
    for (let attempt = 0; attempt < 30; attempt++) {
      const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${base ?? pick()}${pathOrUrl}`
      try {
        const res = await request(url, { headers: { cookie: cookie(), accept: 'text/html' }, headersTimeout: 30_000, bodyTimeout: 30_000 })
        await res.body.dump()
        seen.responses.push({ at: Date.now(), status: res.statusCode, route })
        for (const line of [res.headers['set-cookie'] ?? []].flat()) {
          const [pair] = line.split(';')
          const [name, value] = [pair!.slice(0, pair!.indexOf('=')), pair!.slice(pair!.indexOf('=') + 1)]
          if (/max-age=0|expires=thu, 01 jan 1970/i.test(line) || !value) jar.delete(name)
          else jar.set(name, value)
        }
        if (res.statusCode === 503) {
          await sleep(1_000)
          continue
        }
        return { status: res.statusCode, location: res.headers.location as string | undefined }
      } catch {
        seen.networkErrors++
        await sleep(300 + random() * 700)
      }
    }
    return { status: 0 }
  }

  const start = await get(`/wix/app-url?token=chaos-${i}`, 'app-url')
  if (start.status !== 302 || !start.location) return 'app-url-failed'
  const installer = new URL(start.location)
  seen.states.push(installer.searchParams.get('state')!)
  const approve = await get(`${fakeUrl}/installer/approve${installer.search}`, 'approve')
  if (!approve.location) return 'approve-failed'
  let page = await get(approve.location.replace(/^http:\/\/127\.0\.0\.1:\d+/, ''), 'redirect')
  // The callback may have landed before its process died; the flow cookie then carries on.
  for (let polls = 0; polls < 90 && (page.status === 202 || page.status === 409 || page.status === 0); polls++) {
    if (!jar.has('wix_install_flow')) break
    await sleep(1_000)
    page = await get('/wix/redirect/continue', 'continue')
  }
  return page.status === 302 ? 'sent-on' : `ended-${page.status}`
}
