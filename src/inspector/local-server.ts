import { createServer } from 'node:http'
import { WebSocket, WebSocketServer } from 'ws'

/** Where the local inspector server listens by default. */
export const LOCAL_INSPECTOR_PORT = 8080
export const localInspectorUrl = (port = LOCAL_INSPECTOR_PORT) => `ws://localhost:${port}`
/** The inspector server relays its last messages to a viewer that connects late, as Stately's does. */
const REPLAYED_TO_NEW_VIEWERS = 200

/** The page that hosts Stately's inspector and feeds it what arrives on the WebSocket (as the library's does). */
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
const ws = new WebSocket('ws://' + location.host)
ws.onmessage = (e) => {
  const m = JSON.parse(e.data)
  if (connected) iframe.contentWindow.postMessage(m, '*')
  else buffer.push(m)
}
</script></body></html>`

const parse = (message: string): { type: string; sessionId: string } => {
  try {
    const m = JSON.parse(message) as { type?: unknown; sessionId?: unknown }
    return { type: String(m.type), sessionId: String(m.sessionId) }
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
  const recent: { sessionId: string; message: string }[] = []
  // The latest announcement of each actor with a message in `recent`: a late viewer gets it first,
  // so it knows every actor before any of its events, however long ago the actor was announced.
  const actors = new Map<string, string>()
  wss.on('connection', (ws) => {
    for (const sessionId of new Set(recent.map((r) => r.sessionId))) {
      const actor = actors.get(sessionId)
      if (actor) ws.send(actor)
    }
    for (const { message } of recent) ws.send(message)
    ws.on('message', (data) => {
      const message = String(data)
      const { type, sessionId } = parse(message)
      if (type === '@xstate.actor') actors.set(sessionId, message)
      recent.push({ sessionId, message })
      if (recent.length > REPLAYED_TO_NEW_VIEWERS) {
        const gone = recent.shift()!.sessionId
        if (!recent.some((r) => r.sessionId === gone)) actors.delete(gone)
      }
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
