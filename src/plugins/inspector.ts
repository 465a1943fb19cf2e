import fp from 'fastify-plugin'
import { createInspectorServer } from '@statelyai/inspect/server'
import { installationMachine } from '../../machines/installation.ts'
import { definitionJson } from '../engine/snapshot.ts'
import { createWorkflowInspector } from '../inspector/workflow-inspector.ts'

/** Where the Stately inspector's local server listens by default. */
const LOCAL_INSPECTOR = 'ws://localhost:8080'

/**
 * With INSPECT set, every transition this process commits goes to the Stately inspector:
 * `INSPECT=ws://host:port` sends to a running inspector server, `INSPECT=true` starts one here.
 */
export default fp(
  async (app) => {
    const setting = app.config.inspect
    if (!setting) return
    let server: { stop(): void } | undefined
    if (!/^wss?:\/\//.test(setting)) {
      server = createInspectorServer({ port: 8080, autoOpen: false })
      app.log.info('Stately inspector server on port 8080: open http://localhost:8080 to watch installations')
    }
    const url = server ? LOCAL_INSPECTOR : setting
    const inspector = createWorkflowInspector(url, { installation: JSON.stringify(definitionJson(installationMachine)) })
    const unsubscribe = app.engine.onTransition((workflow, steps) => inspector.record(workflow, steps))
    app.log.info({ inspector: url }, 'sending transitions to the XState inspector')
    app.addHook('onClose', async () => {
      unsubscribe()
      inspector.stop()
      server?.stop()
    })
  },
  { name: 'inspector', dependencies: ['engine'] },
)
