import { createServer } from 'node:http'
import { WebSocket, WebSocketServer } from 'ws'

/** Where the local inspector server listens unless INSPECT_PORT says otherwise. */
export const LOCAL_INSPECTOR_PORT = 8080
export const localInspectorUrl = (port = LOCAL_INSPECTOR_PORT) => `ws://localhost:${port}`
/** The inspector server relays its last messages to a viewer that connects late, as Stately's does. */
const REPLAYED_TO_NEW_VIEWERS = 200
/** Live actors remembered past that window; beyond this many, the longest-known are forgotten. */
const REMEMBERED_ACTORS = 10_000

/**
 * The page that hosts Stately's inspector and feeds it what arrives on the WebSocket (as the library's
 * does). The server stops with the service: the page connects again by itself, and the new server
 * announces every live actor to it.
 */
const bridgePage = () => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Stately Inspector</title>
<style>*{margin:0;padding:0}html,body{height:100%}iframe{width:100%;height:100%;border:none}</style></head>
<body><iframe id="inspector" title="Stately Inspector" src="https://stately.ai/inspect"></iframe><script>
const iframe = document.getElementById('inspector'); const buffer = []; let connected = false
window.addEventListener('message', (e) => {
  if (!e.data || e.data.type !== '@statelyai.connected') return
  connected = true
  buffer.forEach((m) => iframe.contentWindow.postMessage(m, '*'))
  buffer.length = 0
})
function connect() {
  const ws = new WebSocket('ws://' + location.host)
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data)
    if (connected) iframe.contentWindow.postMessage(m, '*')
    else buffer.push(m)
  }
  ws.onclose = () => setTimeout(connect, 1000)
}
connect()
</script></body></html>`

interface Inspection {
  type: string
  sessionId: string
  parentId?: string
  createdAt?: string
  snapshot?: { status?: string }
}

const parse = (message: string): Inspection => {
  try {
    const m = JSON.parse(message) as Inspection
    return { ...m, type: String(m.type), sessionId: String(m.sessionId) }
  } catch {
    return { type: '', sessionId: '' }
  }
}

/**
 * The Stately inspector's local server (what `@statelyai/inspect/server` starts), bound to
 * 127.0.0.1 only: it relays installation data and would take injected events, so nobody on the
 * network may reach it, and no web page but its own bridge may open its WebSocket. Resolves
 * undefined when the port is taken, most likely by an inspector server already running.
 */
export async function startLocalInspector(port = LOCAL_INSPECTOR_PORT): Promise<{ stop(): void } | undefined> {
  const own = new Set([`http://localhost:${port}`, `http://127.0.0.1:${port}`])
  const http = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    response.end(bridgePage())
  })
  const listening = await new Promise<boolean>((resolve) => {
    http.once('error', () => resolve(false))
    http.listen(port, '127.0.0.1', () => resolve(true))
  })
  if (!listening) return undefined
  // Processes send no Origin; browsers always do, and only the bridge page's is let in.
  const verifyClient = ({ origin }: { origin?: string }) => !origin || own.has(origin)
  const wss = new WebSocketServer({ server: http, verifyClient })
  const recent: { inspection: Inspection; message: string }[] = []
  // Each live actor as it stood where `recent` begins: its announcement, with every snapshot of it
  // that has left the window applied. A late viewer is told of these first, so it knows every actor
  // before any message about it, however long ago the actor was announced, and in its state then.
  const before = new Map<string, Inspection>()
  function leaves({ inspection: m }: { inspection: Inspection }) {
    if (m.type === '@xstate.actor') before.set(m.sessionId, m)
    const actor = before.get(m.sessionId)
    if (!actor) return
    if (m.type === '@xstate.snapshot') actor.snapshot = m.snapshot
    // An actor that ended gets no more messages: nobody needs to be told of it.
    if (actor.snapshot?.status !== 'active') before.delete(m.sessionId)
    if (before.size > REMEMBERED_ACTORS) before.delete(before.keys().next().value!)
  }
  // Parents before children (a snapshot names its children), each in the order they were created.
  const byCreation = (a: Inspection, b: Inspection) => Number(a.createdAt) - Number(b.createdAt)
  wss.on('connection', (ws) => {
    const actors = [...before.values()]
    const roots = actors.filter((a) => !a.parentId).sort(byCreation)
    const children = actors.filter((a) => a.parentId).sort(byCreation)
    for (const actor of [...roots, ...children]) ws.send(JSON.stringify(actor))
    for (const { message } of recent) ws.send(message)
    ws.on('message', (data) => {
      const message = String(data)
      recent.push({ inspection: parse(message), message })
      if (recent.length > REPLAYED_TO_NEW_VIEWERS) leaves(recent.shift()!)
      for (const client of wss.clients) if (client !== ws && client.readyState === WebSocket.OPEN) client.send(message)
    })
  })
  return {
    stop() {
      for (const client of wss.clients) client.terminate()
      wss.close()
      http.close()
    },
  }
}
