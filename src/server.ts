import { buildApp } from './app.ts'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { isLostTypesFetch } from './db/driver.ts'
import { toSafeError } from './engine/index.ts'
import { loadSandboxSecrets } from './sandbox/secrets.ts'

/** How long a shutdown may take before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 25_000

function readConfig(): Config {
  try {
    return loadConfig(process.env, () => loadSandboxSecrets(process.env.DATA_DIR || './.data'))
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    console.error(err.message)
    process.exit(1)
  }
}

/** Reads the environment, opens the database, listens, and shuts down gracefully on a signal. */
async function serve() {
  const config = readConfig()
  // Until the app's logger exists (the database may go while the app starts), lines in its format.
  let log: { warn(o: object, msg: string): void; fatal(o: object, msg: string): void } = {
    warn: (o, msg) => console.error(JSON.stringify({ level: 40, time: Date.now(), ...o, msg })),
    fatal: (o, msg) => console.error(JSON.stringify({ level: 60, time: Date.now(), ...o, msg })),
  }
  // A promise nobody awaited failed: the process may be in a state nobody planned for, so it
  // exits (its jobs are taken over within a lease), but first says where, for whoever debugs it.
  // One such failure is planned for: the driver's own array-types query, lost with its connection
  // in a database restart (src/db/driver.ts). Registered before the app is built: its first
  // connection opens while it starts.
  process.on('unhandledRejection', (err) => {
    if (isLostTypesFetch(err)) {
      log.warn({ err: toSafeError(err) }, 'a connection was lost while it opened (the database restarting?); it reconnects by itself')
      return
    }
    const where = err instanceof Error ? err.stack?.split('\n').slice(1, 12).map((l) => l.trim()) : undefined
    log.fatal({ err: toSafeError(err), where }, 'unhandled rejection: exiting')
    process.exit(1)
  })
  const app = await buildApp({ config }).catch((err: Error & { code?: string }) => {
    // The embedded database's DATA_DIR is another process's: one line, no stack.
    if (err.code !== 'DATA_DIR_LOCKED') throw err
    console.error(err.message)
    process.exit(1)
  })

  log = app.log

  let closing = false
  const shutdown = async (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down: finishing in-flight work, releasing leases')
    const force = setTimeout(() => {
      app.log.error('shutdown timed out; exiting')
      process.exit(1)
    }, SHUTDOWN_TIMEOUT_MS)
    await app.close()
    clearTimeout(force)
    process.exit(0)
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))

  await app.listen({ host: config.host, port: config.port })
  if (config.sandbox) {
    app.log.info(
      { installUrl: `${config.publicUrl}/wix/app-url?token=sandbox-install`, adminToken: config.adminToken },
      `Sandbox ready: open ${config.publicUrl}/wix/app-url?token=sandbox-install to install; admin token for /api: ${config.adminToken}`,
    )
  }
  return app
}

await serve()
