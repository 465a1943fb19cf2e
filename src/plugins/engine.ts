import fp from 'fastify-plugin'
import { createTokenCipher } from '../crypto/token-cipher.ts'
import { createEngine, earlierRuns, type Engine } from '../engine/index.ts'
import { supersedeWebhookInstalls } from '../installation/lifecycle.ts'
import { createTokenVault, type TokenVault } from '../installation/token-vault.ts'
import { installationWorkflow } from '../installation/workflow.ts'
import { createRetryBudget } from '../wix/retry-budget.ts'

declare module 'fastify' {
  interface FastifyInstance {
    engine: Engine
    vault: TokenVault
  }
}

export interface EngineOptions {
  /** Start the job poll loop (off in tests that drive `engine.runner.tick()` themselves). */
  poll?: boolean
  pollMs?: number
  leaseMs?: number
  owner?: string
  /** LISTEN/NOTIFY wake-ups; default: on when DATABASE_URL names a Postgres server (PGlite has no LISTEN). */
  listen?: boolean
}

/** The durable engine running the installation workflow, and the token vault its effects use. */
export default fp<EngineOptions>(
  async (app, opts) => {
    const cipher = createTokenCipher(app.config.tokenKeys)
    const vault = createTokenVault({
      sql: app.sql, cipher, wix: app.wix, now: app.now, log: app.log,
      // Refusals judged to be of the app's credentials count as such, whatever status Wix gave them.
      onAppRefused: (status) => app.wixCredentials.record({
        endpoint: 'oauth2/token', grant: 'client_credentials', status: status ?? null, durationMs: 0, outcome: 'final',
        code: 'WIX_CLIENT_REJECTED',
      }),
    })
    // Called by the exchange effect, so only once `engine` below exists: it ends webhook-started installations through it.
    const supersede = (instanceId: string, byId: string) => supersedeWebhookInstalls({ engine, sql: app.sql }, instanceId, byId)
    const engine = createEngine({
      sql: app.sql,
      leaseSql: app.leaseSql,
      definitions: [installationWorkflow({
        wix: app.wix, vault, now: app.now, retries: createRetryBudget({ perMinute: app.config.wixRetriesPerMinute }), supersede,
        earlierRuns: (key, attempt) => earlierRuns(app.sql, key, attempt),
      })],
      sealer: { seal: cipher.encrypt, open: cipher.decrypt },
      log: app.log,
      now: app.now,
      owner: opts.owner,
      leaseMs: opts.leaseMs ?? app.config.jobLeaseMs,
      pollMs: opts.pollMs,
      listen: opts.listen ?? Boolean(app.config.databaseUrl),
    })
    app.decorate('engine', engine)
    app.decorate('vault', vault)
    // An installation that ended (expired, cancelled, failed) never files tokens it held mid-exchange.
    engine.onTransition((w) => {
      if (w.machine === 'installation' && w.status === 'done') {
        vault.dropHeld([w.id]).catch((err: unknown) => app.log.warn({ workflowId: w.id, err: { code: (err as { code?: string }).code } }, 'could not drop held tokens'))
      }
    })
    if (opts.poll !== false) app.addHook('onReady', async () => engine.runner.start())
    // onClose runs once the HTTP server has stopped taking requests, and in reverse order of
    // registration: after the plugins that feed the engine work (webhooks, retention), before
    // the Wix client and the database it needs to finish (an embedded database closes last).
    app.addHook('onClose', async () => engine.runner.stop(app.config.shutdownGraceMs))
  },
  { name: 'engine', dependencies: ['config', 'database', 'wix-client'] },
)
