import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /** Set with INSPECT: replays an installation's stored history into the inspector (the console's button). */
    workflowInspector: { url: string; replay(id: string): Promise<number> } | null
  }
}

/**
 * With INSPECT set, every transition this process commits goes to the Stately inspector:
 * `INSPECT=ws://host:port` sends to a running inspector server, `INSPECT=true` starts one here
 * on 127.0.0.1:INSPECT_PORT (or uses the one already there). An absent inspector never stops the
 * service: one warning, and transitions are dropped beyond a bounded buffer until it answers.
 * On every connection (the first, and after the inspector restarted) each installation in flight
 * is announced as it stands, so a viewer sees it before it next moves.
 */
// Named, not `export default fp(…)`: tsc (5.9) leaves a dynamic import's `.ts` unrewritten inside
// an `export default` expression, and dist/ would import files that are not there.
const inspectorPlugin = fp(
  async (app) => {
    const setting = app.config.inspect
    app.decorate('workflowInspector', null)
    if (!setting) return
    // Loaded only with INSPECT set: the inspector's WebSocket client and server are not the service's.
    const { localInspectorUrl, startLocalInspector } = await import('../inspector/local-server.ts')
    const { recordReplay, replayInstallation } = await import('../inspector/replay.ts')
    const { createWorkflowInspector } = await import('../inspector/workflow-inspector.ts')
    const { inFlightInstallations } = await import('../inspector/in-flight.ts')
    let server: { stop(): void } | undefined
    let url = setting
    // Set while the port was taken and nobody knows yet whether an inspector server took it.
    let takenPort: number | undefined
    if (!/^wss?:\/\//.test(setting)) {
      const port = app.config.inspectPort
      url = localInspectorUrl(port)
      server = await startLocalInspector(port)
      if (server) app.log.info(`Stately inspector server on 127.0.0.1:${port}: open http://localhost:${port} to watch installations`)
      else {
        takenPort = port
        app.log.info(`INSPECT_PORT ${port} is taken: sending transitions to the inspector server there, if it is one`)
      }
    }
    const inspector = createWorkflowInspector(url, {
      machine: (name) => app.engine.definition(name).machine,
      onDown: (reason) => {
        if (takenPort === undefined) {
          app.log.warn({ inspector: url, reason }, 'XState inspector unreachable: transitions are buffered (the latest 1000) until it answers')
        } else {
          app.log.warn({ inspector: url, reason }, `INSPECT_PORT ${takenPort} is taken by something that is not an XState inspector server: set INSPECT_PORT to a free port`)
        }
        takenPort = undefined
      },
      onUp: () => {
        takenPort = undefined
        app.log.info({ inspector: url }, 'connected to the XState inspector')
        inFlightInstallations(app.sql).then(
          (workflows) => inspector.announceLive(workflows),
          (err: unknown) => app.log.warn({ err }, 'could not announce the installations in flight to the XState inspector'),
        )
      },
    })
    // Listeners run inside the engine's send: whatever goes wrong here stays here.
    const unsubscribe = app.engine.onTransition((workflow, steps) => {
      try {
        inspector.record(workflow, steps)
      } catch (err) {
        app.log.warn({ err, workflowId: workflow.id }, 'could not send a transition to the XState inspector')
      }
    })
    app.workflowInspector = {
      url,
      async replay(id) {
        const replay = await replayInstallation(app.sql, id)
        if (!replay) return 0
        recordReplay(inspector, replay)
        return replay.steps.length
      },
    }
    app.addHook('onClose', async () => {
      unsubscribe()
      await inspector.stop()
      server?.stop()
    })
  },
  { name: 'inspector', dependencies: ['engine'] },
)

export default inspectorPlugin
