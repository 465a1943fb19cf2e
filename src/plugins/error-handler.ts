import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod'
import { isDatabaseBusy, isDatabaseUnavailable } from '../db/connect.ts'
import { EngineError } from '../engine/index.ts'
import { Errors } from '../errors.ts'
import { consoleErrorPage } from '../console/layout.ts'
import { htmlPage, startAgainUrl } from '../routes/html.ts'

interface ErrorBody {
  statusCode: number
  code: string
  error: string
  message: string
}

/** Browsers on the /wix and /console pages get a readable page; API clients get JSON. */
const wantsHtml = (request: FastifyRequest) =>
  /^\/(wix|console)(\/|$|\?)/.test(request.url) && (request.headers.accept ?? '').includes('text/html')

/** What went wrong, for a site owner: plain words, and whether starting again helps. */
const OWNER_WORDS: Record<string, { title: string; message: string; startAgain?: boolean }> = {
  INVALID_REQUEST: {
    title: 'This installation link is not valid',
    message: 'The link that brought you here is incomplete or out of date, so the installation cannot go on from it.',
    startAgain: true,
  },
  STATE_COOKIE_MISSING: {
    title: 'This installation link can no longer be used',
    message: 'It has expired, or it was opened in another browser than the one where the installation started.',
    startAgain: true,
  },
  STATE_MISMATCH: {
    title: 'This installation link belongs to another browser',
    message: 'The installation was started in a different browser or window, so it cannot be finished here.',
    startAgain: true,
  },
  STATE_UNKNOWN: {
    title: 'This installation link is not valid',
    message: 'We do not know the installation this link belongs to: it may be out of date.',
    startAgain: true,
  },
  STATE_EXPIRED: {
    title: 'This installation attempt has expired',
    message: 'Too much time passed on the permissions screen, so this attempt was closed.',
    startAgain: true,
  },
  STATE_ALREADY_USED: {
    title: 'This step is already done',
    message: 'This installation link has already been used. If the app is not on your site, start the installation '
      + 'again.',
    startAgain: true,
  },
  FLOW_COOKIE_MISSING: {
    title: 'No installation in progress',
    message: 'This browser has no installation waiting to finish: it may have finished already, or been started '
      + 'elsewhere.',
    startAgain: true,
  },
  FLOW_COOKIE_INVALID: {
    title: 'No installation in progress',
    message: 'This browser has no installation waiting to finish here.',
    startAgain: true,
  },
  NOT_FOUND: { title: 'Page not found', message: 'There is no page at this address.' },
  RATE_LIMITED: {
    title: 'Too many attempts',
    message: 'There were too many requests from your network. Wait a minute, then try again.',
  },
  // Not the owner's doing, and starting again at once would meet the same cap.
  STARTS_LIMITED: {
    title: 'Many installations are starting',
    message: 'Wait a minute, then open the installation link again.',
  },
}

/** A site owner's page for an error: what happened in plain words, what to do next, the code small. */
function ownerPage(request: FastifyRequest, body: ErrorBody, continueTo?: string) {
  const { appName, publicUrl } = request.server.config
  if (continueTo && body.code === 'RATE_LIMITED') {
    const message = 'Many installations are under way from your network. This page tries again by itself in a few seconds.'
    return htmlPage('Your installation goes on', message, { appName, refreshTo: continueTo, refreshSeconds: 10, code: body.code })
  }
  if (continueTo) {
    const message = 'This step was already done. This page moves on by itself to where your installation is.'
    return htmlPage('Your installation goes on', message, {
      appName, refreshTo: continueTo, code: body.code,
    })
  }
  const words = OWNER_WORDS[body.code] ?? (body.statusCode >= 500
    ? { title: `${appName} is briefly unavailable`, message: 'Something went wrong on our side. Try again shortly.' }
    : { title: 'The installation could not go on', message: 'Something about this request was not right.' })
  const startAgain = OWNER_WORDS[body.code] ? words.startAgain : true
  const action = startAgain ? { href: startAgainUrl(publicUrl), label: 'Start the installation again' } : undefined
  return htmlPage(words.title, words.message, { appName, action, code: body.code })
}

/** The console's error page, with the id asked for (when it looks like one) offered as a search. */
function consoleError(request: FastifyRequest, body: ErrorBody) {
  const { consoleSession, params } = request as FastifyRequest & { consoleSession?: { csrf: string } | null }
  const id = (params as { id?: unknown } | undefined)?.id
  return consoleErrorPage({
    ...body,
    appName: request.server.config.appName,
    csrf: consoleSession?.csrf,
    id: typeof id === 'string' && /^[A-Za-z0-9-]{1,64}$/.test(id) ? id : undefined,
  })
}

/** `continueTo`: where a browser's page moves on to by itself, when there is somewhere to go. */
function send(request: FastifyRequest, reply: FastifyReply, body: ErrorBody, continueTo?: string) {
  if ((body.statusCode === 429 || body.statusCode === 503) && !reply.hasHeader('retry-after')) reply.header('retry-after', '1')
  reply.code(body.statusCode)
  if (wantsHtml(request)) {
    const page = request.url.startsWith('/console') ? consoleError(request, body) : ownerPage(request, body, continueTo)
    return reply.type('text/html; charset=utf-8').send(page)
  }
  return reply.send(body)
}

/**
 * One error handler: 4xx answers show their named code and message; 5xx answers show neither,
 * and are logged with the error (which by construction carries no secret).
 */
export default fp<{ notFound?: boolean }>(
  async (app, opts) => {
    app.setErrorHandler((err: FastifyError, request, reply) => {
      if (hasZodFastifySchemaValidationErrors(err)) {
        const issue = err.validation[0]
        const where = `${err.validationContext ?? 'request'}${issue?.instancePath || ''}`.replace(/\//g, '.')
        const e = new Errors.INVALID_REQUEST(`${where} ${issue?.message ?? 'is invalid'}`)
        request.log.info({ code: e.code, message: e.message }, 'request rejected')
        return send(request, reply, { statusCode: 400, code: e.code, error: 'Bad Request', message: e.message })
      }
      const busy = isDatabaseBusy(err)
      if (busy || isDatabaseUnavailable(err)) {
        request.log.warn({ code: err.code }, busy ? 'database busy' : 'database unavailable')
        // Up but full (53300) or read-only after a failover (25006) does not trip the breaker:
        // other requests may well get a connection. Either way: come back shortly.
        if (!busy) request.server.databaseDown?.()
        reply.header('retry-after', '5')
        const e = new Errors.DATABASE_UNAVAILABLE()
        return send(request, reply, { statusCode: 503, code: e.code, error: 'Service Unavailable', message: e.message })
      }
      const status = err instanceof EngineError ? err.statusCode : (err.statusCode ?? 500)
      if (status === 503 && err.code && !err.code.startsWith('FST_')) {
        // Ours, and temporary: say what is unavailable and when to come back.
        reply.header('retry-after', '5')
        return send(request, reply, { statusCode: 503, code: err.code, error: 'Service Unavailable', message: err.message })
      }
      if (status === 502 && err.code && !err.code.startsWith('FST_')) {
        // Ours: Wix refused something of ours (the app's credentials); the message names the fix, never a secret.
        request.log.error({ code: err.code }, err.message)
        return send(request, reply, { statusCode: 502, code: err.code, error: 'Bad Gateway', message: err.message })
      }
      if (status >= 500) {
        request.log.error({ err: { code: err.code, message: err.message, stack: err.stack } }, 'request failed')
        return send(request, reply, { statusCode: status, code: status === 503 ? 'UNAVAILABLE' : 'INTERNAL_ERROR', error: status === 503 ? 'Service Unavailable' : 'Internal Server Error', message: 'Something went wrong on our side; it has been logged.' })
      }
      const code = err.code?.startsWith('FST_') ? (FASTIFY_CODES[err.code] ?? 'INVALID_REQUEST') : (err.code ?? 'BAD_REQUEST')
      request.log.info({ code, message: err.message }, 'request rejected')
      const continueTo = (err as { continueTo?: unknown }).continueTo
      return send(request, reply, { statusCode: status, code, error: httpName(status), message: err.message }, typeof continueTo === 'string' ? continueTo : undefined)
    })
    // Unknown URLs belong to whoever owns the server: the service, not an app embedding it.
    if (!opts.notFound) return
    app.setNotFoundHandler((request, reply) => {
      const e = new Errors.NOT_FOUND(`${request.method} ${request.url.split('?')[0]}`)
      return send(request, reply, { statusCode: 404, code: e.code, error: 'Not Found', message: e.message })
    })
  },
  { name: 'error-handler' },
)

/** Fastify's own 4xx codes, renamed into ours. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
}

const httpName = (status: number) =>
  ({ 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 410: 'Gone', 413: 'Payload Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type', 429: 'Too Many Requests' } as Record<number, string>)[status] ?? 'Error'
