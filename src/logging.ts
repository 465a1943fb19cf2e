import type { PinoLoggerOptions } from 'fastify/types/logger.js'

/** Query parameters that carry credentials on our routes: the OAuth code and state, Wix's tokens. */
const SECRET_PARAMS = ['code', 'state', 'token', 'access_token', 'refresh_token']

/** A URL as logged: secret query values replaced, everything else kept for debugging. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const params = new URLSearchParams(url.slice(q + 1))
  for (const name of SECRET_PARAMS) {
    if (params.has(name)) params.set(name, '[redacted]')
  }
  return `${url.slice(0, q)}?${params.toString()}`
}

interface LoggedRequest {
  method: string
  url: string
  hostname?: string
  ip?: string
  headers?: Record<string, unknown>
}

/** A client's request id as logged: short, printable, never mistaken for ours. */
const clientRequestId = (id: string) => id.replace(/[^\x21-\x7e]/g, '?').slice(0, 128)

/** JSON lines, a request id on each, secrets never written. */
export function loggerOptions(level: string): PinoLoggerOptions {
  return {
    level,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', 'res.headers.location'],
      censor: '[redacted]',
    },
    serializers: {
      req: (req: LoggedRequest) => {
        const clientId = req.headers?.['x-request-id']
        return {
          method: req.method,
          url: redactUrl(req.url),
          host: req.hostname,
          remoteAddress: req.ip,
          // The caller's own id, for matching their logs to ours; `reqId` is always the server's.
          ...(typeof clientId === 'string' && { clientRequestId: clientRequestId(clientId) }),
        }
      },
    },
  }
}
