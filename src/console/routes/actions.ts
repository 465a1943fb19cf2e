import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { Workflow } from '../../engine/index.ts'
import { idParams } from '../../routes/admin-schemas.ts'
import { ConsoleErrors } from '../errors.ts'
import { checkCsrf, csrfBody } from './guards.ts'
import { installationRenderer } from './render-installation.ts'

export const ACTIONS = ['finish', 'retry', 'cancel'] as const
const formSchema = { hide: true, params: idParams, body: csrfBody }

/** What the installation's page says once an action (or a replay into the inspector) is done. */
export const DONE_WORDS = {
  finish: 'the app\'s setup was reported finished to Wix.',
  retry: 'the bi-event was sent again.',
  cancel: 'the installation is cancelled.',
  inspect: 'its history was replayed into the XState inspector.',
} as const

/** The forms an installation's page posts: finish, retry, cancel, and a replay into the inspector. */
const actionRoutes: FastifyPluginAsyncZod = async (app) => {
  const { installations } = app
  const renderInstallation = installationRenderer(app)

  for (const action of ACTIONS) {
    app.post(`/console/installations/:id/${action}`, { schema: formSchema }, async (request, reply) => {
      const session = checkCsrf(request, request.body.csrf)
      if (request.body.confirm !== 'yes') throw new ConsoleErrors.CONSOLE_NOT_CONFIRMED()
      const before = await installations.find(request.params.id)
      let after: Workflow
      try {
        after = await installations[action](before)
      } catch (err) {
        const e = err as { statusCode?: number; message?: string }
        if (!e.statusCode || e.statusCode >= 500) throw err
        reply.code(e.statusCode)
        const now = await installations.find(before.id)
        return renderInstallation(request, reply, now, session, { kind: 'error', text: e.message ?? 'refused' })
      }
      request.log.info({ workflowId: after.id, action }, 'console action')
      const lastError = (after.context as { lastError?: { message: string } | null }).lastError
      if (action !== 'cancel' && after.statePath === 'SetupIncomplete.waiting' && lastError) {
        reply.code(502)
        const text = `Wix did not accept the bi-event: ${lastError.message}`
        return renderInstallation(request, reply, after, session, { kind: 'error', text })
      }
      return reply.redirect(`/console/installations/${after.id}?done=${action}`, 303)
    })
  }

  app.post('/console/installations/:id/inspect', { schema: formSchema }, async (request, reply) => {
    checkCsrf(request, request.body.csrf)
    const w = await installations.find(request.params.id)
    if (!app.workflowInspector) throw new ConsoleErrors.CONSOLE_INSPECTOR_OFF()
    await app.workflowInspector.replay(w.id)
    return reply.redirect(`/console/installations/${w.id}?done=inspect`, 303)
  })
}

export default actionRoutes
