import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { valueOf, type Workflow } from '../../engine/index.ts'
import { effectAttempts } from '../../installation/queries.ts'
import { attemptsView, historyView, installationView } from '../../installation/view.ts'
import { startAgainUrl } from '../../routes/html.ts'
import { layoutMachine, renderDiagram } from '../diagram.ts'
import { consolePage } from '../layout.ts'
import type { ConsoleSession } from '../sessions.ts'
import { installationView as installationPage, type Actions } from '../views.ts'
import { html, shell } from './html.ts'

/** An installation's console page: its state on the machine's diagram, its history, its siblings, what may be done. */
export function installationRenderer(app: Pick<FastifyInstance, 'config' | 'engine' | 'sql' | 'installations' | 'workflowInspector'>) {
  const { config, installations, engine } = app
  const machine = () => engine.definition('installation').machine

  /** The actions the machine itself would take in this state. */
  const actionsOf = (w: Workflow): Actions => {
    const snapshot = machine().resolveState({ value: valueOf(w.statePath), context: w.context })
    const failedBefore = Boolean((w.context as { lastError?: unknown }).lastError)
    const canFinish = snapshot.can({ type: 'FINISH' })
    const cancel = snapshot.can({ type: 'CANCEL' })
    return { finish: canFinish && !failedBefore, retry: canFinish && failedBefore, cancel }
  }

  return async function renderInstallation(request: FastifyRequest, reply: FastifyReply, w: Workflow, session: ConsoleSession,
    notice?: { kind: 'ok' | 'error'; text: string }) {
    const view = installationView(w)
    const [history, attempts, layout, siblings] = await Promise.all([
      engine.history(w.id),
      effectAttempts(app.sql, w.id),
      layoutMachine(machine()),
      view.instanceId || view.claimedInstanceId
        ? installations.list({ instanceId: (view.instanceId ?? view.claimedInstanceId)!, limit: 20 }) : { items: [w] },
    ])
    const steps = historyView(history)
    const title = `The installation machine, ${w.statePath} now`
    const diagram = renderDiagram(layout, { current: w.statePath, steps, title })
    return html(reply, consolePage(shell(config.appName, `Installation ${w.id.slice(0, 8)}`, session, notice), installationPage({
      installation: view,
      history: steps,
      attempts: attemptsView(attempts),
      siblings: siblings.items.map(installationView),
      diagram, actions: actionsOf(w), csrf: session.csrf, inspect: { enabled: Boolean(app.workflowInspector) },
      reinstallUrl: startAgainUrl(config.publicUrl),
    })))
  }
}
