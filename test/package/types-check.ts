// Type-checked by tsc inside the consumer project against the tarball's declarations only.
import Fastify from 'fastify'
import wixInstallEngine, { optionsFromEnv, type WixInstallOptions } from 'wix-install-engine/fastify'
import { createEngine, defineWorkflow, type Sealer } from 'wix-install-engine'
import postgres from 'postgres'
import { setup } from 'xstate'

const machine = setup({
  types: { input: {} as { door: string }, events: {} as { type: 'OPEN' } | { type: 'CLOSE' } },
}).createMachine({
  id: 'door',
  initial: 'closed',
  states: { closed: { on: { OPEN: 'open' } }, open: { on: { CLOSE: 'closed' } } },
})

const door = defineWorkflow({ name: 'door', version: 1, machine, project: () => ({ key: null, reason: null }) })
const sealer: Sealer = { seal: (s) => s, open: (s) => s }
const log = { debug() {}, info() {}, warn() {}, error() {} }
const engine = createEngine({ sql: postgres(), definitions: [door], sealer, log })

export async function typed() {
  const w = await engine.create('door', { door: 'front' }, { source: 'me' })
  await engine.send(w.id, { type: 'OPEN' }, { source: 'me', machine: 'door' })
  // @ts-expect-error KNOCK is not an event of the door machine
  await engine.send(w.id, { type: 'KNOCK' }, { source: 'me' })
  // @ts-expect-error the door machine's input needs `door`
  await engine.create('door', {}, { source: 'me' })

  const env = optionsFromEnv(process.env)
  const options: WixInstallOptions = { ...env, autoFinish: true, publicUrl: 'https://app.example' }
  // @ts-expect-error options are the configuration names in camelCase
  const wrong: WixInstallOptions = { PUBLIC_URL: 'https://app.example' }
  const app = Fastify()
  await app.register(wixInstallEngine, options)
  return wrong
}
