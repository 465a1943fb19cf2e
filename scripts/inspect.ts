// npm run inspect -- <installation id or instanceId>: replays one installation's stored history
// into the XState inspector (INSPECT=ws://…, else the local inspector server on 127.0.0.1:INSPECT_PORT,
// 8080 unless set, started here when none runs). Reads DATABASE_URL, else the embedded database under DATA_DIR.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Sql } from 'postgres'
import { installationMachine } from '../machines/installation.ts'
import { connect } from '../src/db/connect.ts'
import { LOCAL_INSPECTOR_PORT, localInspectorUrl, startLocalInspector } from '../src/inspector/local-server.ts'
import { recordReplay, replayInstallation } from '../src/inspector/replay.ts'
import { valueOf } from '../src/engine/snapshot.ts'
import { actorId, createWorkflowInspector } from '../src/inspector/workflow-inspector.ts'

const CONNECT_MS = 3_000

class Failure extends Error {}
const fail = (message: string): never => {
  throw new Failure(message)
}

async function openDatabase(): Promise<{ sql: Sql; close(): Promise<void> }> {
  if (process.env.DATABASE_URL) {
    const sql = connect(process.env.DATABASE_URL, { max: 1 })
    return { sql, close: () => sql.end({ timeout: 2 }) }
  }
  const dataDir = process.env.DATA_DIR || './.data'
  // Opening an empty directory would create a database there: say what is missing instead.
  if (!existsSync(join(dataDir, 'pglite', 'PG_VERSION'))) fail(`no embedded database under DATA_DIR ${dataDir}; set DATABASE_URL or DATA_DIR`)
  const { DataDirLockedError, startEmbeddedPostgres } = await import('../src/db/embedded.ts')
  const embedded = await startEmbeddedPostgres({ dataDir }).catch((err: Error) =>
    fail(err instanceof DataDirLockedError ? `${err.message} (the embedded database can be read only while the service is stopped)` : err.message),
  )
  return { sql: embedded.connect(), close: () => embedded.close() }
}

async function main(ref: string | undefined) {
  if (!ref || ref.startsWith('-')) fail('usage: npm run inspect -- <installation id or instanceId>')
  const explicit = process.env.INSPECT && /^wss?:\/\//.test(process.env.INSPECT) ? process.env.INSPECT : undefined
  const db = await openDatabase()
  const replay = await replayInstallation(db.sql, ref!).finally(() => db.close())
  if (!replay) return fail(`no installation ${ref}`)

  const port = Number(process.env.INSPECT_PORT || LOCAL_INSPECTOR_PORT)
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail('INSPECT_PORT must be a port number (1-65535)')
  const url = explicit ?? localInspectorUrl(port)
  const open = () => createWorkflowInspector(url, { machine: () => installationMachine, retryMs: { min: 200, max: 1_000 } })
  let inspector = open()
  let server: { stop(): void } | undefined
  if (!(await inspector.whenOpen(CONNECT_MS))) {
    await inspector.stop()
    if (explicit) fail(`could not reach the inspector at ${url}`)
    // Nothing on the port (the service that would host it is stopped to free the embedded database).
    server = (await startLocalInspector(port)) ?? fail(`could not reach the inspector at ${url}, and its port is taken`)
    inspector = open()
    if (!(await inspector.whenOpen(CONNECT_MS))) fail(`could not reach the inspector at ${url}`)
  }

  const workflow = { id: replay.id, machine: replay.machine }
  if (replay.siblings.length > 1 && ref!.toLowerCase() !== replay.id) {
    // An instance id names its newest installation: say so, and which others there are.
    const others = replay.siblings.filter((s) => s.id !== replay.id)
      .map((s) => `${s.id} (${s.state}, ${s.created_at.toISOString()})`)
    const count = `instance ${replay.instanceId} has ${replay.siblings.length} installations`
    console.log(`${count}; replaying ${replay.id}. The others: ${others.join(', ')}`)
  }
  recordReplay(inspector, replay)
  for (const step of replay.steps) {
    const drift = step.to === step.storedTo ? '' : `  (history says ${step.storedTo}: the machine changed since)`
    const move = `${step.from ?? '·'} → ${step.to}${drift}`
    console.log(`${String(step.seq).padStart(3)}  ${step.event.type}  ${move}  ${step.at.toISOString()}`)
  }
  await inspector.stop(5_000)
  const end = JSON.stringify(valueOf(replay.steps.at(-1)!.to))
  console.log(`replayed ${replay.steps.length} events of installation ${replay.id} into ${url} as actor ${actorId(workflow)} (ends in ${end})`)
  if (server) {
    console.log(`Inspector server on 127.0.0.1:${port}: open http://localhost:${port} to watch the replay; Ctrl-C stops`)
    await new Promise((resolve) => process.once('SIGINT', resolve))
    server.stop()
  }
}

try {
  await main(process.argv[2])
  process.exit(0)
} catch (err) {
  console.error(`inspect: ${err instanceof Failure ? err.message : (err as Error).message || String(err)}`)
  process.exit(1)
}
