// npm run inspect -- <installation id or instanceId>: replays one installation's stored history
// into the XState inspector (INSPECT=ws://… or the default local inspector server).
import { connect } from '../src/db/connect.ts'
import { actorId, createWorkflowInspector, valueOf } from '../src/inspector/workflow-inspector.ts'
import { replayInstallation } from '../src/inspector/replay.ts'

const ref = process.argv[2]
const url = process.env.INSPECT && /^wss?:\/\//.test(process.env.INSPECT) ? process.env.INSPECT : 'ws://localhost:8080'
const fail = (message: string): never => {
  console.error(`inspect: ${message}`)
  process.exit(1)
}
if (!ref) fail('usage: npm run inspect -- <installation id or instanceId>')

let close = async () => {}
let sql
if (process.env.DATABASE_URL) {
  sql = connect(process.env.DATABASE_URL, { max: 1 })
  close = () => sql!.end({ timeout: 2 })
} else {
  const { startEmbeddedPostgres } = await import('../src/db/embedded.ts')
  const embedded = await startEmbeddedPostgres({ dataDir: process.env.DATA_DIR || './.data' }).catch((err: Error) =>
    fail(`${err.message} (the embedded database can be read only while the service is stopped)`),
  )
  sql = connect(embedded.url, { max: 1 })
  close = async () => {
    await sql!.end({ timeout: 2 })
    await embedded.close()
  }
}

const replay = await replayInstallation(sql, ref!)
if (!replay) {
  await close()
  fail(`no installation ${ref}`)
}
const { id, steps } = replay!
const inspector = createWorkflowInspector(url)
const workflow = { id, machine: 'installation' }
for (const step of steps) {
  inspector.record({ ...workflow, context: step.snapshot.context, status: step.snapshot.status }, [
    { event: step.event.type, from: step.from, to: step.to, data: step.event },
  ])
  console.log(`${String(step.seq).padStart(3)}  ${step.event.type}  → ${step.to}`)
}
// The inspector sends once its socket is open: give it a moment, then say how it went.
const { connected } = await waitForSocket(inspector, 5_000)
await new Promise((r) => setTimeout(r, 300))
inspector.stop()
await close()
if (!connected) fail(`could not reach the inspector at ${url}`)
console.log(`replayed ${steps.length} events of installation ${id} into ${url} as actor ${actorId(workflow)} (ends in ${JSON.stringify(valueOf(steps.at(-1)!.to))})`)

async function waitForSocket(i: { isOpen(): boolean }, ms: number) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (i.isOpen()) return { connected: true }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { connected: false }
}
