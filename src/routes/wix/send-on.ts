import type { FastifyReply } from 'fastify'
import type { Config } from '../../config.ts'
import type { Workflow } from '../../engine/index.ts'
import type { InstallFlow } from '../../installation/flow.ts'
import { htmlPage, installFailedPage, waitingPage } from '../html.ts'
import type { WixCookies } from './cookies.ts'

/** Aborts when the browser goes away before its answer is sent: waiting on for it costs the database. */
const browserGone = (reply: FastifyReply) => {
  const gone = new AbortController()
  // A browser that left before we got here has already closed its socket: no event will come.
  if (reply.request.raw.socket?.destroyed || reply.raw.destroyed) gone.abort()
  else {
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) gone.abort()
    })
  }
  return gone.signal
}

/** The answers to a browser back from Wix: on to the app, back to Wix, or a page that waits. */
export function browserSendOn(deps: {
  config: Config; flow: InstallFlow; cookies: WixCookies
  /** Aborts as the service shuts down: a waiting browser is answered at once, not held past the grace. */
  closing: AbortSignal
}) {
  const { config, flow, closing, cookies: { stateCookie, flowCookie, setCookie, clearCookie } } = deps

  /** Where a browser waiting on its installation checks again. */
  const continueUrl = (installationId: string) => `${config.publicUrl}/wix/redirect/continue?installation=${installationId}`

  /** Waits for the exchange, then answers; a browser that left gets nothing sent on its behalf. */
  async function settleAndSendOn(reply: FastifyReply, installationId: string, waitMs: number) {
    const gone = browserGone(reply)
    // A shutdown ends the wait as a browser leaving does, sending nothing on its behalf; the
    // browser, still here, gets the page that checks again — on whichever instance answers then.
    // (Not AbortSignal.any: on Node 20 a signal made from the app-long `closing` stays alive with it.)
    const ended = new AbortController()
    const end = () => ended.abort()
    gone.addEventListener('abort', end, { once: true })
    closing.addEventListener('abort', end, { once: true })
    if (gone.aborted || closing.aborted) end()
    const { installation, sentOn, sentBack } = await flow.settled(installationId, waitMs, ended.signal)
      .finally(() => closing.removeEventListener('abort', end))
    // No one to send on, and a close-window token handed out to no one would be spent.
    if (gone.aborted) return reply.code(202).send()
    if (sentBack) {
      // Its code was spent by a process that died: back through Wix's installer for a new one,
      // with a fresh state bound to this browser as at the start.
      setCookie(reply, stateCookie(installationId), sentBack.state, config.consentTimeoutMs / 1000)
      return reply.redirect(sentBack.installerUrl, 302)
    }
    return sendOn(reply, installation!, sentOn)
  }

  /** Step 6, or a page that gets there once the exchange is over. */
  async function sendOn(reply: FastifyReply, installation: Workflow, sentOn: boolean) {
    const destination = await flow.destination(installation, sentOn)
    if (destination.kind === 'redirect') {
      // Sent on for good: nothing is left to follow, so no cookie is left to replay.
      clearCookie(reply, flowCookie(installation.id))
      return reply.redirect(destination.url, 302)
    }
    if (destination.kind === 'installed') {
      clearCookie(reply, flowCookie(installation.id))
      return reply.type('text/html; charset=utf-8').send(htmlPage('Installation complete',
        `${config.appName} is installed on your site. You can close this window.`, { appName: config.appName }))
    }
    if (destination.kind === 'pending') {
      return reply.code(202).type('text/html; charset=utf-8')
        .send(waitingPage(config.appName, continueUrl(installation.id), destination.detour))
    }
    clearCookie(reply, flowCookie(installation.id))
    return reply.type('text/html; charset=utf-8').send(installFailedPage(config.appName, config.publicUrl, destination.failure?.reason))
  }

  return { continueUrl, settleAndSendOn }
}
