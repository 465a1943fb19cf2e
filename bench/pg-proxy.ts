import { createConnection, createServer, type Server } from 'node:net'

/**
 * A TCP proxy between a server and Postgres that reads the client's half of the wire protocol
 * and counts what it sends: statements executed (`Execute`, simple `Query`) by their SQL text,
 * and round trips (`Sync`, `Flush`, simple `Query`: each is a request the client then waits on).
 * Counting needs no change to the code under test; the proxy is used only for a counting pass,
 * never in the timed rounds (it adds a hop).
 */
export interface WireCounts {
  statements: number
  roundTrips: number
  /** statement text (whitespace collapsed, cut to 160 chars) → executions */
  byStatement: Map<string, number>
  /** Bytes on the wire each way: what the driver writes (its statements, their parameters) and reads. */
  bytesToServer: number
  bytesFromServer: number
}

const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const short = (q: string) => q.replace(/\s+/g, ' ').trim().slice(0, 160)

export async function startPgProxy(target: { host: string; port: number }) {
  const counts: WireCounts = { statements: 0, roundTrips: 0, byStatement: new Map(), bytesToServer: 0, bytesFromServer: 0 }
  const count = (q: string) => {
    counts.statements++
    const k = short(q)
    counts.byStatement.set(k, (counts.byStatement.get(k) ?? 0) + 1)
  }

  const server: Server = createServer((client) => {
    const upstream = createConnection(target)
    upstream.pipe(client)
    upstream.on('data', (chunk: Buffer) => { counts.bytesFromServer += chunk.length })
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())

    const prepared = new Map<string, string>()
    let bound = ''
    let startup = true
    let buf: Buffer = Buffer.alloc(0)
    const cstr = (b: Buffer, at: number) => {
      const end = b.indexOf(0, at)
      return [b.toString('utf8', at, end), end + 1] as const
    }
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk)
      counts.bytesToServer += chunk.length
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
      for (;;) {
        if (startup) {
          if (buf.length < 8) break
          const len = buf.readInt32BE(0)
          if (buf.length < len) break
          const code = buf.readInt32BE(4)
          if (code !== SSL_REQUEST && code !== GSSENC_REQUEST) startup = false
          buf = buf.subarray(len)
          continue
        }
        if (buf.length < 5) break
        const type = String.fromCharCode(buf[0]!)
        const len = buf.readInt32BE(1)
        if (buf.length < len + 1) break
        const body = buf.subarray(5, len + 1)
        if (type === 'Q') {
          count(cstr(body, 0)[0])
          counts.roundTrips++
        } else if (type === 'P') {
          const [name, at] = cstr(body, 0)
          prepared.set(name, cstr(body, at)[0])
        } else if (type === 'B') {
          const [, at] = cstr(body, 0)
          bound = prepared.get(cstr(body, at)[0]) ?? '?'
        } else if (type === 'E') {
          count(bound)
        } else if (type === 'S' || type === 'H') {
          counts.roundTrips++
        }
        buf = buf.subarray(len + 1)
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  return {
    port,
    counts,
    /** A copy of the counters now, to diff against later. */
    snapshot(): WireCounts {
      return { ...counts, byStatement: new Map(counts.byStatement) }
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

export function diffCounts(a: WireCounts, b: WireCounts): WireCounts {
  const byStatement = new Map<string, number>()
  for (const [k, v] of b.byStatement) {
    const d = v - (a.byStatement.get(k) ?? 0)
    if (d) byStatement.set(k, d)
  }
  return {
    statements: b.statements - a.statements,
    roundTrips: b.roundTrips - a.roundTrips,
    byStatement,
    bytesToServer: b.bytesToServer - a.bytesToServer,
    bytesFromServer: b.bytesFromServer - a.bytesFromServer,
  }
}
