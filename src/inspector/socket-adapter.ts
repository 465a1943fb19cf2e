import type { StatelyInspectionEvent } from '@statelyai/inspect'
import WebSocket from 'ws'
import { backoffDelay, type RetryPolicy } from '../engine/index.ts'

export interface SocketAdapterOptions {
  url: string
  /** Messages kept while the inspector is unreachable; past this the oldest are dropped. */
  maxBuffered?: number
  /** Reconnect delays: doubling from `min` up to `max`, jittered (the engine's backoff). */
  retryMs?: { min: number; max: number }
  /** Once per outage: the first failed connect, or the loss of an open connection. */
  onDown?: (reason: string) => void
  onUp?: () => void
}

/**
 * The transport of `createInspector` (the same messages `createWebSocketInspector` sends), with
 * what a long-running service needs and its own adapter lacks: reconnecting after the inspector
 * went away (not only after a failed connect), sending the buffer once rather than again on every
 * reconnect, a stop that stays stopped, and no timer that keeps the process alive.
 */
export function createSocketAdapter(o: SocketAdapterOptions) {
  const max = o.maxBuffered ?? 1_000
  const retry = o.retryMs ?? { min: 1_000, max: 30_000 }
  const policy: RetryPolicy = { maxAttempts: Infinity, baseDelayMs: retry.min, maxDelayMs: retry.max }
  const buffer: string[] = []
  const openWaiters = new Set<() => void>()
  let socket: WebSocket | undefined
  let open = false
  let stopped = false
  let reported = false
  /** Failed connects since the last open one. */
  let failures = 0
  let timer: NodeJS.Timeout | undefined
  let dropped = 0

  function connect() {
    if (stopped) return
    let reason = 'connection closed'
    const ws = new WebSocket(o.url, { handshakeTimeout: 5_000 })
    socket = ws
    ws.on('open', () => {
      open = true
      reported = false
      failures = 0
      o.onUp?.()
      for (const message of buffer.splice(0)) ws.send(message)
      for (const wake of openWaiters) wake()
    })
    ws.on('error', (err) => {
      reason = err.message || String((err as NodeJS.ErrnoException).code ?? err)
    })
    // `ws` emits close after every error, so this is the one place that reconnects.
    ws.on('close', () => {
      if (socket !== ws) return
      open = false
      if (stopped) return
      if (!reported) {
        reported = true
        o.onDown?.(reason)
      }
      timer = setTimeout(connect, backoffDelay(++failures, policy))
      timer.unref()
    })
  }

  return {
    start: connect,
    send(event: StatelyInspectionEvent) {
      let message: string
      try {
        message = JSON.stringify(event)
      } catch {
        return
      }
      if (open && socket) return socket.send(message)
      buffer.push(message)
      if (buffer.length > max) {
        buffer.shift()
        dropped++
      }
    },
    /** Resolves true once connected, false after `ms` without a connection. */
    whenOpen(ms: number): Promise<boolean> {
      if (open) return Promise.resolve(true)
      return new Promise((resolve) => {
        const done = (ok: boolean) => {
          clearTimeout(giveUp)
          openWaiters.delete(wake)
          resolve(ok)
        }
        const wake = () => done(true)
        const giveUp = setTimeout(() => done(false), ms)
        openWaiters.add(wake)
      })
    },
    /** Messages dropped so far because the buffer was full. */
    dropped: () => dropped,
    /** Closes the connection after what was sent has gone out (at most `ms`); never reconnects. */
    stop(ms = 1_000): Promise<void> {
      stopped = true
      clearTimeout(timer)
      const ws = socket
      if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve()
      return new Promise((resolve) => {
        const force = setTimeout(() => ws.terminate(), ms)
        ws.once('close', () => {
          clearTimeout(force)
          resolve()
        })
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate()
        else ws.close()
      })
    },
  }
}

export type SocketAdapter = ReturnType<typeof createSocketAdapter>
