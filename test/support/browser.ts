import { request } from 'undici'

export interface Page {
  status: number
  location: string | undefined
  headers: Record<string, string | string[] | undefined>
  body: string
}

/**
 * A browser as far as the flow cares: GETs over real sockets, keeps the cookies it is sent
 * (honouring Path and Max-Age=0 deletions), never follows redirects by itself.
 */
export function createBrowser() {
  const jar = new Map<string, { value: string; path: string; attributes: string }>()

  const cookieHeader = (path: string) =>
    [...jar].filter(([, c]) => path.startsWith(c.path)).map(([name, c]) => `${name}=${c.value}`).join('; ')

  function remember(setCookie: string | string[] | undefined) {
    for (const line of [setCookie ?? []].flat()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim())
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq)
      const value = pair!.slice(eq + 1)
      const path = attrs.find((a) => /^path=/i.test(a))?.slice(5) ?? '/'
      const expired = attrs.some((a) => /^max-age=0$/i.test(a) || /^expires=thu, 01 jan 1970/i.test(a))
      if (expired || value === '') jar.delete(name)
      else jar.set(name, { value, path, attributes: attrs.join('; ') })
    }
  }

  async function get(url: string, headers: Record<string, string> = {}): Promise<Page> {
    const u = new URL(url)
    const cookie = cookieHeader(u.pathname)
    const res = await request(url, { method: 'GET', headers: { accept: 'text/html', ...(cookie && { cookie }), ...headers } })
    remember(res.headers['set-cookie'])
    const body = await res.body.text()
    return { status: res.statusCode, location: res.headers.location as string | undefined, headers: res.headers, body }
  }

  return { get, jar }
}
