import { request } from 'undici'

/** What the driver saw: every answer's status and when, and the OAuth states it carried. */
export interface Observations {
  responses: { at: number; status: number; route: string }[]
  networkErrors: number
  states: string[]
  /** How each flow ended, as the browser saw it (`sent-on`, or the last status and error code). */
  outcomes: Record<string, number>
  /** Installations whose browser reached the Redirect URL and waited on: none may be lost. */
  waited: string[]
  /** Browsers sent back through Wix's installer for a new code (a code spent by a killed process). */
  detours: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The error code our HTML error page names in its title (`Installation problem (CODE)`), or the failure page. */
const errorCode = (html: string) =>
  /Installation problem \(([A-Z_]+)\)/.exec(html)?.[1] ?? (html.includes('could not be completed') ? 'INSTALLATION_FAILED' : undefined)

/**
 * One site owner's browser through the whole flow, while servers die under it: a request that
 * hits a dead process is sent again (to either instance), as a browser's reload would. The owner
 * takes a moment on Wix's consent screen, so flows overlap the chaos instead of racing it.
 */
export async function drive(i: number, urls: string[], fakeUrl: string, seen: Observations, random: () => number) {
  const jar = new Map<string, string>()
  const pick = () => urls[Math.floor(random() * urls.length)]!
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ')

  async function get(pathOrUrl: string, route: string): Promise<{ status: number; location?: string; code?: string }> {
    for (let attempt = 0; attempt < 30; attempt++) {
      const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${pick()}${pathOrUrl}`
      try {
        const res = await request(url, { headers: { cookie: cookie(), accept: 'text/html' }, headersTimeout: 30_000, bodyTimeout: 30_000 })
        const body = await res.body.text()
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
        return { status: res.statusCode, location: res.headers.location as string | undefined, code: errorCode(body) }
      } catch {
        seen.networkErrors++
        await sleep(300 + random() * 700)
      }
    }
    return { status: 0 }
  }

  const start = await get(`/wix/app-url?token=chaos-${i}`, 'app-url')
  if (start.status !== 302 || !start.location) return `app-url-${start.status}`
  const installer = new URL(start.location)
  seen.states.push(installer.searchParams.get('state')!)
  await sleep(300 + random() * 2_200)
  const approve = await get(`${fakeUrl}/installer/approve${installer.search}`, 'approve')
  if (!approve.location) return `approve-${approve.status}`
  // Either instance may take the callback: the state cookie is signed with the shared secret.
  const callback = (location: string) => get(location.replace(/^http:\/\/127\.0\.0\.1:\d+/, ''), 'redirect')
  let page = await callback(approve.location)
  if (page.status !== 0) seen.waited.push(installer.searchParams.get('state')!.split('.')[0]!)
  // The callback may have landed before its process died; the flow cookie then carries on. A
  // code spent by a killed process sends the browser back through Wix's installer: followed
  // like any redirect, the owner approving on Wix's screen once more.
  for (let polls = 0; polls < 90; polls++) {
    if (page.status === 302 && page.location?.startsWith(`${fakeUrl}/installer/install`)) {
      seen.detours++
      await sleep(300 + random() * 1_200)
      const again = await get(`${fakeUrl}/installer/approve${new URL(page.location).search}`, 'approve')
      if (!again.location) return `approve-${again.status}`
      page = await callback(again.location)
      continue
    }
    if (!(page.status === 202 || page.status === 409 || page.status === 0)) break
    if (![...jar.keys()].some((name) => name.startsWith('wix_install_flow_'))) break
    await sleep(1_000)
    page = await get('/wix/redirect/continue', 'continue')
  }
  return page.status === 302 ? 'sent-on' : `ended-${page.status}${page.code ? `-${page.code}` : ''}`
}
