import t from 'tap'
import { createInspector } from '@statelyai/inspect'
import { createActor, fromPromise, initialTransition, setup, transition } from 'xstate'
import { stepper } from '../src/engine/snapshot.ts'
import { PROTOCOL_VERSION } from '../src/inspector/workflow-inspector.ts'
import { freshDatabase } from './support/database.ts'
import { waitUntil } from './support/process.ts'

/**
 * The internals of other packages this project leans on, each held to what our code reads of it.
 * The packages are pinned to exact versions (package.json); an upgrade that changes one of these
 * fails here, loudly and by name, instead of somewhere downstream.
 */

const machine = setup({
  actors: { fetchIt: fromPromise(async () => 'done') },
}).createMachine({
  id: 'contract',
  initial: 'idle',
  context: { n: 0 },
  states: {
    idle: { on: { GO: { target: 'working' } } },
    working: {
      invoke: { id: 'fetch', src: 'fetchIt' },
      after: { 1_000: 'idle' },
      on: { STOP: 'idle' },
    },
  },
})

t.test("XState: a snapshot's _nodes list the active state nodes with their invokes (planEffects reads them)", async (t) => {
  const [idle] = initialTransition(machine)
  const [working] = transition(machine, idle, { type: 'GO' })
  const nodes = (working as unknown as { _nodes?: { invoke?: { id: string }[] }[] })._nodes
  t.ok(Array.isArray(nodes), '_nodes is an array on a snapshot')
  t.same(nodes!.flatMap((n) => (n.invoke ?? []).map((i) => i.id)), ['fetch'], "its nodes' invokes name the active invoke")
})

t.test("XState: the stepper's hand-built actor scope steps exactly as XState's own transition()", async (t) => {
  const step = stepper(machine)
  const [ours, ourActions] = step.initial(undefined)
  const [theirs, theirActions] = initialTransition(machine)
  t.same(ours.value, theirs.value, 'the same initial state')
  t.same(ourActions.map((a) => a.type), theirActions.map((a) => a.type), 'the same initial actions')
  const [next, nextActions] = step.next(ours, { type: 'GO' })
  const [expected, expectedActions] = transition(machine, theirs, { type: 'GO' })
  t.same(next.value, expected.value, 'the same state after an event')
  t.same(nextActions.map((a) => a.type), expectedActions.map((a) => a.type), 'the same actions: the invoke and the delay')
  t.ok(nextActions.some((a) => a.type === 'xstate.spawnChild'), 'an invoke is collected as xstate.spawnChild')
  t.ok(nextActions.some((a) => a.type === 'xstate.raise'), 'a delay is collected as a delayed xstate.raise')
})

t.test('postgres.js: a query carries its canceller (cancelQuery calls it to keep a failed cancel handled)', async (t) => {
  const db = await freshDatabase()
  t.teardown(db.drop)
  const query = db.sql`select 1 as one`
  const pending = query.execute()
  t.equal(typeof (query as unknown as { canceller?: unknown }).canceller, 'function', 'query.canceller is a function')
  t.same(await pending, [{ one: 1 }], 'and the query runs as usual')
})

t.test(`@statelyai/inspect: messages are stamped with protocol version ${PROTOCOL_VERSION} and the event types we send`, async (t) => {
  const sent: { type: string; _version?: string }[] = []
  const inspector = createInspector({ send: (event) => void sent.push(event as never) })
  const actor = createActor(machine, { inspect: inspector.inspect })
  actor.start()
  actor.send({ type: 'GO' })
  actor.stop()
  // It sends when the event loop is idle.
  await waitUntil('the inspector has sent its messages', () => sent.some((m) => m.type === '@xstate.event'))
  t.same([...new Set(sent.map((m) => m._version))], [PROTOCOL_VERSION], 'every one stamped with the version our inspector sends')
  for (const type of ['@xstate.actor', '@xstate.event', '@xstate.snapshot']) {
    t.ok(sent.some((m) => m.type === type), `${type} is a message type of the protocol`)
  }
})
