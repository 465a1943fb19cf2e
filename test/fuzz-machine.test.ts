import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { fromPromise, initialTransition, setup, transition, type AnyMachineSnapshot, type AnyStateNode } from 'xstate'
import {
  FAILURE_STATES,
  installationMachine,
  type InstallationContext,
  type InstallationInput,
} from '../machines/installation.ts'
import { createEngine, type PersistedState } from '../src/engine/index.ts'
import { persist, restore, statePath, stepper } from '../src/engine/snapshot.ts'
import { installationWorkflow } from '../src/installation/workflow.ts'
import { freshDatabase } from './support/database.ts'
import { identitySealer, silentLog } from './support/engine.ts'

/**
 * Property-based tests of the installation machine: random event sequences (every event the
 * machine knows, effect results with random errors, every timer, garbage) never reach a state the
 * definition does not declare, never lose or rewrite a failure's reason, and survive the engine's
 * persist/restore — first on the pure machine, then through the real engine on Postgres.
 */

const machine = installationMachine
// A fixed default keeps CI repeatable; FUZZ_SEED=$RANDOM explores further.
const seed = Number(process.env.FUZZ_SEED ?? 20261128)
const PURE_RUNS = Number(process.env.FUZZ_RUNS ?? 1_000)
const ENGINE_RUNS = Number(process.env.FUZZ_ENGINE_RUNS ?? 30)
t.comment(`fast-check seed ${seed} (rerun with FUZZ_SEED=${seed})`)

const FAILURE_REASONS = ['exchange_refused', 'exchange_unavailable', 'code_expired', 'consent_declined', 'consent_abandoned', 'cancelled', 'uninstalled', 'reinstall_required', 'superseded']
/**
 * States after Wix said whose tokens these are: keyed by instanceId from then on. Before that,
 * CodeReceived knows only the Redirect URL's claim (docs/design.md: the instanceId is a claim anyone can edit).
 */
const KEYED_STATES = ['Tokened', 'SetupIncomplete', 'Finished']
const isFailureState = (top: string) => (FAILURE_STATES as readonly string[]).includes(top)
const topState = (value: unknown) => (typeof value === 'string' ? value : Object.keys(value as object)[0]!)

// ---- what the definition declares, read off the machine itself ------------------------------------

/** Every leaf state path the definition declares (`SetupIncomplete.waiting`, `Finished`, …). */
function declaredLeaves(node: AnyStateNode, prefix: string[] = []): string[] {
  const children = Object.entries(node.states ?? {})
  if (children.length === 0) return [prefix.join('.')]
  return children.flatMap(([key, child]) => declaredLeaves(child as AnyStateNode, [...prefix, key]))
}
const LEAVES = new Set(declaredLeaves(machine.root))

/** Every event type some transition of the definition listens to, `xstate.after.*` included. */
function declaredEventTypes(node: AnyStateNode): string[] {
  return [
    ...node.ownEvents,
    ...(node.after ?? []).map((tr: { eventType: string }) => tr.eventType),
    ...Object.values(node.states ?? {}).flatMap((child) => declaredEventTypes(child as AnyStateNode)),
  ]
}
const EVENT_TYPES = [...new Set(declaredEventTypes(machine.root))].sort()
const AFTER_EVENTS = EVENT_TYPES.filter((type) => type.startsWith('xstate.after.'))

// ---- generators -----------------------------------------------------------------------------------

const text = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.constant(''))
const uuid = fc.uuid()
const instanceIdArb = fc.oneof(uuid, uuid, fc.string({ minLength: 1, maxLength: 40 }))

const effectError = fc.oneof(
  fc.record(
    {
      code: fc.oneof(fc.constantFrom('REFRESH_TOKEN_REJECTED', 'WIX_REJECTED', 'WIX_UNAVAILABLE', 'EFFECT_TIMEOUT', 'UNKNOWN'), text),
      message: text,
      retryable: fc.boolean(),
      status: fc.integer({ min: 100, max: 599 }),
      wixRequestId: text,
      attempts: fc.nat({ max: 40 }),
    },
    { requiredKeys: [] },
  ),
  fc.constantFrom(null, undefined, 'boom', 42, true, [] as unknown[]),
)

/** The state hash every generated installation issued; events carry it, or now and then a forged one. */
const ISSUED = 'a'.repeat(64)
const stateHashArb = fc.oneof({ weight: 5, arbitrary: fc.constant(ISSUED) }, { weight: 1, arbitrary: fc.stringMatching(/^[0-9a-f]{64}$/) })

const input: fc.Arbitrary<InstallationInput> = fc.oneof(fc.record({
  id: uuid,
  origin: fc.constantFrom('app-url' as const, 'platform' as const),
  stateHash: fc.constant(ISSUED),
  closeWindow: fc.boolean(),
  autoFinish: fc.boolean(),
  consentTimeoutMs: fc.integer({ min: 1, max: 3_600_000 }),
  codeTtlMs: fc.integer({ min: 1, max: 600_000 }),
  browserReturnTimeoutMs: fc.integer({ min: 1, max: 900_000 }),
}), fc.record({
  // Started by a signed AppInstalled: the instance is known, there is no state and no browser.
  id: uuid,
  origin: fc.constant('webhook' as const),
  stateHash: fc.constant(null),
  instanceId: uuid,
  originInstanceId: fc.option(uuid, { nil: null }),
  // WIX_AUTH_FLOW=legacy waits for the browser flow; CLONED_SITE_POLICY=reinstall ends a clone at once.
  browserWaitMs: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 600_000 }) }),
  reinstallClone: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  closeWindow: fc.boolean(),
  autoFinish: fc.boolean(),
  consentTimeoutMs: fc.integer({ min: 1, max: 3_600_000 }),
  codeTtlMs: fc.integer({ min: 1, max: 600_000 }),
  browserReturnTimeoutMs: fc.integer({ min: 1, max: 900_000 }),
}))

type Ev = { type: string } & Record<string, unknown>

/** Every event the machine knows, by type, with well-formed payloads as the routes and the runner send them. */
const byType: Record<string, fc.Arbitrary<Ev>> = {
  INSTALLER_REDIRECTED: fc.constant({ type: 'INSTALLER_REDIRECTED' }),
  CALLBACK: fc.record({ type: fc.constant('CALLBACK'), code: fc.string({ minLength: 1, maxLength: 64 }), instanceId: instanceIdArb, stateHash: stateHashArb }),
  CONSENT_DECLINED: fc.record({ type: fc.constant('CONSENT_DECLINED'), error: fc.string({ minLength: 1, maxLength: 40 }), description: fc.option(text, { nil: undefined }), stateHash: stateHashArb }, { requiredKeys: ['type', 'error', 'stateHash'] }),
  BROWSER_SENT_ON: fc.record({ type: fc.constant('BROWSER_SENT_ON'), destination: fc.constantFrom('close-window', 'post-install') }),
  FINISH: fc.constant({ type: 'FINISH' }),
  CANCEL: fc.record({ type: fc.constant('CANCEL'), detail: fc.option(text, { nil: undefined }) }, { requiredKeys: ['type'] }),
  UNINSTALLED: fc.constant({ type: 'UNINSTALLED' }),
  REFRESH_REJECTED: fc.record({ type: fc.constant('REFRESH_REJECTED'), detail: fc.string({ minLength: 1, maxLength: 80 }) }),
  SUPERSEDED: fc.record({ type: fc.constant('SUPERSEDED'), by: uuid }),
  ...Object.fromEntries(['exchangeCode', 'confirmInstall', 'finishSetup'].flatMap((id) => [
    [`xstate.done.actor.${id}`, fc.record({
      type: fc.constant(`xstate.done.actor.${id}`),
      output: fc.oneof(fc.constant({}), fc.record({ at: fc.integer().map(String) }), fc.record({ instanceId: uuid, exchangedAt: fc.constant('2026-01-01T00:00:00.000Z') }),
        fc.record({ confirmedAt: fc.constant('2026-01-01T00:00:00.000Z'), supersededBy: uuid })),
    })],
    [`xstate.error.actor.${id}`, fc.record({ type: fc.constant(`xstate.error.actor.${id}`), error: effectError })],
  ])),
  ...Object.fromEntries(AFTER_EVENTS.map((type) => [type, fc.constant({ type })])),
}
const knownEvent: fc.Arbitrary<Ev> = fc.oneof(...Object.values(byType))

/** Events no state should act on: unknown types, the right timer for the wrong state, XState internals. */
const garbageEvent: fc.Arbitrary<Ev> = fc.oneof(
  fc.string({ maxLength: 30 }).filter((type) => !EVENT_TYPES.includes(type) && type !== '*').map((type) => ({ type })),
  fc.constantFrom(
    'xstate.init', 'xstate.done.actor.unknown', 'xstate.error.actor.unknown', 'xstate.done.state.installation',
    'xstate.after.consentTimeout.installation.CodeReceived', 'xstate.after.codeDeadline.installation.Authorizing',
    'xstate.after.1000.installation.Authorizing', 'xstate.stop', 'installation', 'callback', 'finish',
  ).map((type) => ({ type })),
  fc.record({ type: fc.constantFrom(...EVENT_TYPES), junk: fc.jsonValue({ maxDepth: 2 }) }),
)

/**
 * A step is an event as generated, or a guided pick: one generated payload of every known type,
 * of which the step sends the `pick`-th the current state accepts. Uniform random events almost
 * never walk a sequence as long as the happy path; guided picks get everywhere, and still shrink.
 */
type Item = { event: Ev } | { pick: number; menu: Ev[] }
const item: fc.Arbitrary<Item> = fc.oneof(
  { weight: 3, arbitrary: knownEvent.map((event) => ({ event })) },
  { weight: 1, arbitrary: garbageEvent.map((event) => ({ event })) },
  { weight: 4, arbitrary: fc.record({ pick: fc.nat(), menu: fc.tuple(...Object.values(byType)) }) },
)
const sequence = fc.array(item, { minLength: 0, maxLength: 30, size: 'max' })

/** A representative of every event type (and error shape) for the can() comparison. */
const CATALOG: Ev[] = [
  ...EVENT_TYPES.map((type) => ({ type })),
  { type: 'CALLBACK', code: 'c', instanceId: '8a3f1c1e-2b4d-4c6e-8f00-0123456789ab', stateHash: ISSUED },
  { type: 'CONSENT_DECLINED', error: 'access_denied', stateHash: ISSUED },
  { type: 'xstate.error.actor.exchangeCode', error: { code: 'X', message: 'm', retryable: false } },
  { type: 'xstate.error.actor.finishSetup', error: { code: 'REFRESH_TOKEN_REJECTED', message: 'm', retryable: false } },
  { type: 'xstate.error.actor.finishSetup', error: { code: 'WIX_UNAVAILABLE', message: 'm', retryable: true } },
  { type: 'xstate.done.actor.unknown' },
  { type: 'NONSENSE' },
]

// ---- the pure machine, step by step as the engine drives it --------------------------------------

/** A JSON text with keys sorted: jsonb keeps its own key order. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_k, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v))

/** What a JSON column gives back: the engine's snapshot after a trip through Postgres. */
const throughDatabase = (state: PersistedState): PersistedState => JSON.parse(JSON.stringify(state))

interface Step {
  event: Ev
  accepted: boolean
  snapshot: AnyMachineSnapshot
}

/** Runs `events` like `engine.send`: an event `can()` rejects is dropped and changes nothing. */
function run(inp: InstallationInput, items: Item[]) {
  let [snapshot] = initialTransition(machine, inp)
  const start = snapshot
  const steps: Step[] = []
  for (const it of items) {
    let event: Ev
    if ('event' in it) event = it.event
    else {
      const accepted = it.menu.filter((e) => snapshot.can(e as never))
      event = accepted.length ? accepted[it.pick % accepted.length]! : it.menu[it.pick % it.menu.length]!
    }
    const accepted = snapshot.can(event as never)
    if (accepted) [snapshot] = transition(machine, snapshot, event as never)
    steps.push({ event, accepted, snapshot })
  }
  return { start, steps }
}

/** The events a generated sequence sends, for counterexamples and the other properties. */
const eventsOf = (inp: InstallationInput, items: Item[]) => run(inp, items).steps.map((s) => s.event)
const describe = (inp: InstallationInput, items: Item[]) => eventsOf(inp, items).map((e) => JSON.stringify(e)).join(' → ') || '(none)'

/** The invariants every reached snapshot must satisfy, given the one before it. */
function checkInvariants(prev: AnyMachineSnapshot | undefined, snapshot: AnyMachineSnapshot) {
  const context = snapshot.context as InstallationContext
  const path = statePath(snapshot.value)
  const top = topState(snapshot.value)
  if (snapshot.status === 'error') throw new Error(`the machine errored in ${path}: ${String(snapshot.error)}`)
  if (!LEAVES.has(path)) throw new Error(`reached ${path}, which the definition does not declare`)
  if (isFailureState(top)) {
    if (snapshot.status !== 'done') throw new Error(`failure state ${top} is not final (status ${snapshot.status})`)
    if (!context.failure || !FAILURE_REASONS.includes(context.failure.reason)) {
      throw new Error(`${top} has no known failure reason: ${JSON.stringify(context.failure)}`)
    }
    if (typeof context.failure.detail !== 'string' || context.failure.detail.trim() === '') {
      throw new Error(`${top} (${context.failure.reason}) has no readable detail: ${JSON.stringify(context.failure.detail)}`)
    }
  } else if (context.failure !== null) {
    throw new Error(`${path} is not a failure state but records ${JSON.stringify(context.failure)}`)
  }
  if (KEYED_STATES.includes(top) && (typeof context.instanceId !== 'string' || context.instanceId === '')) {
    throw new Error(`${path} comes after Wix confirmed the install but has no instanceId: ${JSON.stringify(context.instanceId)}`)
  }
  if (top === 'CodeReceived' && context.instanceId !== null) {
    throw new Error(`CodeReceived took an instanceId before Wix confirmed it: ${JSON.stringify(context.instanceId)}`)
  }
  if (!prev) return
  const before = prev.context as InstallationContext
  if (prev.status === 'done') {
    if (statePath(prev.value) !== path) throw new Error(`a final ${statePath(prev.value)} moved on to ${path}`)
    if (canonical(before.failure) !== canonical(context.failure)) {
      throw new Error(`the failure of ${statePath(prev.value)} changed: ${JSON.stringify(before.failure)} → ${JSON.stringify(context.failure)}`)
    }
  }
  if (before.instanceId !== null && before.instanceId !== context.instanceId) {
    throw new Error(`instanceId changed: ${before.instanceId} → ${context.instanceId}`)
  }
}

t.test('the definition, as the generators see it', async (t) => {
  t.ok(LEAVES.has('SetupIncomplete.waiting') && LEAVES.has('Finished'), `declares ${LEAVES.size} leaf states`)
  for (const s of FAILURE_STATES) t.ok(LEAVES.has(s), `${s} is declared`)
  t.ok(AFTER_EVENTS.length >= 3, `generates every timer: ${AFTER_EVENTS.join(', ')}`)
  for (const type of ['CALLBACK', 'FINISH', 'UNINSTALLED', 'xstate.done.actor.exchangeCode', 'xstate.error.actor.finishSetup']) {
    t.ok(EVENT_TYPES.includes(type), `generates ${type}`)
  }
})

t.test('random event sequences on the pure machine', async (t) => {
  const started = Date.now()
  const reached = new Set<string>()
  const reasons = new Set<string>()
  const details = fc.check(
    fc.property(input, sequence, (inp, items) => {
      const { start, steps } = run(inp, items)
      checkInvariants(undefined, start)
      let prev = start
      for (const step of steps) {
        checkInvariants(prev, step.snapshot)
        prev = step.snapshot
        reached.add(statePath(step.snapshot.value))
        const reason = (step.snapshot.context as InstallationContext).failure?.reason
        if (reason) reasons.add(reason)
      }
    }),
    { numRuns: PURE_RUNS, seed },
  )
  t.comment(`${details.numRuns} sequences in ${Date.now() - started} ms`)
  t.notOk(details.failed, details.failed
    ? `counterexample (seed ${seed}, path ${details.counterexamplePath}): ${describe(details.counterexample![0], details.counterexample![1])} with input ${JSON.stringify(details.counterexample![0])}\n${String(details.errorInstance)}`
    : `every reached state is declared, failures are final with a known reason and a detail, instanceId never changes (${details.numRuns} runs)`)
  if (!details.failed) {
    // A generator that never gets past Authorizing would pass everything above: prove it walks far.
    t.same([...LEAVES].filter((leaf) => !reached.has(leaf)), [], `the sequences reached every declared state (${reached.size})`)
    t.same(FAILURE_REASONS.filter((r) => !reasons.has(r)), [], 'and every failure reason')
  }
})

t.test('what the engine persists restores to a machine that answers every event the same', async (t) => {
  const started = Date.now()
  const step = stepper(machine)
  /** What an action asks for, as the engine's planner reads it (functions and actor refs dropped). */
  const plan = (actions: unknown[]) => canonical(actions.map((a) => {
    const { type, params } = a as { type: string; params?: Record<string, unknown> }
    return { type, params: JSON.parse(JSON.stringify(params ?? {}, (k, v) => (typeof v === 'function' || k === 'actorRef' ? undefined : v))) }
  }))
  const details = fc.check(
    fc.property(input, sequence, (inp, items) => {
      const events = eventsOf(inp, items)
      // Two tracks: one live snapshot stepped by XState's own functions, one stepped as the engine
      // steps (its stepper) and put through persist → JSON → restore at every step.
      const [start, liveActions] = initialTransition(machine, inp)
      let live = start
      const [first, firstActions] = step.initial(inp)
      if (plan(firstActions) !== plan(liveActions)) throw new Error(`at start: the stepper's actions ${plan(firstActions)} ≠ XState's ${plan(liveActions)}`)
      let durable = restore(machine, throughDatabase(persist(first)))
      const compare = (where: string) => {
        if (canonical(persist(durable)) !== canonical(persist(live))) {
          throw new Error(`${where}: restored ${JSON.stringify(persist(durable))} ≠ live ${JSON.stringify(persist(live))}`)
        }
        for (const e of [...CATALOG, ...events]) {
          if (live.can(e as never) !== durable.can(e as never)) {
            throw new Error(`${where}: can(${JSON.stringify(e)}) is ${live.can(e as never)} live but ${durable.can(e as never)} restored`)
          }
        }
      }
      compare('at start')
      for (const event of events) {
        if (live.can(event as never)) [live] = transition(machine, live, event as never)
        const restored = restore(machine, throughDatabase(persist(durable)))
        if (restored.can(event as never)) {
          const [next, actions] = step.next(restored, event as never)
          const [theirs, theirActions] = transition(machine, restored, event as never)
          if (plan(actions) !== plan(theirActions) || canonical(persist(next)) !== canonical(persist(theirs))) {
            throw new Error(`after ${event.type}: the stepper gave ${plan(actions)} ≠ XState's ${plan(theirActions)}`)
          }
          durable = restore(machine, throughDatabase(persist(next)))
        }
        compare(`after ${event.type}`)
      }
    }),
    { numRuns: Math.ceil(PURE_RUNS / 2), seed },
  )
  t.comment(`${details.numRuns} sequences in ${Date.now() - started} ms`)
  t.notOk(details.failed, details.failed
    ? `counterexample (seed ${seed}): ${describe(details.counterexample![0], details.counterexample![1])} with input ${JSON.stringify(details.counterexample![0])}\n${String(details.errorInstance)}`
    : `persist/restore and the engine's stepper lose nothing: same state, context, actions and can() answers (${details.numRuns} runs)`)
})

t.test("the engine's stepper takes a machine whose invoke has a systemId into that state again and again", async (t) => {
  // One shared scope would register the invoked actor's systemId in its system on every entry,
  // and XState refuses a second actor with the same one: such machines step as XState steps them.
  const keyed = setup({ actors: { work: fromPromise(async () => 1) } }).createMachine({
    initial: 'idle',
    states: { idle: { on: { GO: 'busy' } }, busy: { invoke: { id: 'job', src: 'work', systemId: 'worker' }, on: { STOP: 'idle' } } },
  })
  const step = stepper(keyed)
  let [snapshot] = step.initial(undefined)
  const spawned: string[] = []
  for (let i = 0; i < 3; i++) {
    const [busy, actions] = step.next(snapshot, { type: 'GO' })
    spawned.push(...actions.map((a) => a.type).filter((type) => type === 'xstate.spawnChild'))
    ;[snapshot] = step.next(busy, { type: 'STOP' })
  }
  t.equal(spawned.length, 3, 'each entry spawns the invoke, and none throws')
  t.equal(snapshot.value, 'idle')
})

// ---- the same sequences through the real engine on Postgres -----------------------------------------

t.test('random event sequences through the real engine on Postgres', async (t) => {
  const db = await freshDatabase()
  t.teardown(db.drop)
  const never = async () => {
    throw new Error('effects never run in this test')
  }
  const definition = installationWorkflow({
    wix: { exchangeCode: never, refreshAccessToken: never, instanceOf: never, clientCredentials: never, sendBiEvent: never },
    vault: {} as never,
    now: () => new Date(),
  })
  const engine = createEngine({ sql: db.sql, definitions: [definition], sealer: identitySealer, log: silentLog })
  // No runner: effect jobs this process leases itself are dropped, timers stay rows.
  engine.setLocalRunner(() => {})

  const started = Date.now()
  const details = await fc.check(
    fc.asyncProperty(input, sequence, async (generated, items) => {
      // Every run is a new row: shrinking replays the same generated id.
      const inp = { ...generated, id: randomUUID() }
      const { id, ...rest } = inp
      const created = await engine.create('installation', { ...rest, id }, { source: 'fuzz' })
      const { start, steps } = run(inp, items)
      const stored = async () => {
        const [row] = await db.sql<{ snapshot: PersistedState; version: number; state: string; reason: string | null; key: string | null }[]>`
          select snapshot, version, state, reason, key from wix_engine.workflows where id = ${id}`
        return row!
      }
      const same = (where: string, row: PersistedState, snapshot: AnyMachineSnapshot) => {
        const expected = throughDatabase(persist(snapshot))
        if (canonical(row.value) !== canonical(expected.value) || canonical(row.context) !== canonical(expected.context) || row.status !== expected.status) {
          throw new Error(`${where}: stored ${JSON.stringify(row)} ≠ pure ${JSON.stringify(expected)}`)
        }
      }
      if (created.statePath !== statePath(start.value)) throw new Error(`created in ${created.statePath}, pure machine starts in ${statePath(start.value)}`)
      let version = (await stored()).version
      for (const [i, step] of steps.entries()) {
        const r = await engine.send(id, step.event, { source: 'fuzz' })
        const row = await stored()
        const where = `step ${i + 1} (${step.event.type})`
        if (r.accepted !== step.accepted) throw new Error(`${where}: engine accepted=${r.accepted}, pure can()=${step.accepted}`)
        if (row.version !== version + (step.accepted ? 1 : 0)) throw new Error(`${where}: version ${version} → ${row.version}`)
        version = row.version
        same(where, row.snapshot, step.snapshot)
        const context = step.snapshot.context as InstallationContext
        if (row.state !== topState(step.snapshot.value)) throw new Error(`${where}: state column ${row.state}`)
        if (row.reason !== (context.failure?.reason ?? null)) throw new Error(`${where}: reason column ${row.reason}, failure ${JSON.stringify(context.failure)}`)
        // The confirmed instance, else the claim, marked as one (claim:<instance>).
        const key = context.instanceId ?? (context.claimedInstanceId ? `claim:${context.claimedInstanceId.toLowerCase()}` : null)
        if (row.key !== key) throw new Error(`${where}: key column ${row.key}, instanceId ${context.instanceId}, claim ${context.claimedInstanceId}`)
      }
      // The history replays, through the pure machine from xstate.init, to what is stored.
      const history = await engine.history(id)
      if (history.length !== 1 + steps.filter((s) => s.accepted).length) throw new Error(`history has ${history.length} rows`)
      let [replayed] = initialTransition(machine, inp)
      if (history[0]!.event_type !== 'xstate.init' || history[0]!.to_state !== statePath(replayed.value)) throw new Error(`history starts with ${JSON.stringify(history[0])}`)
      for (const h of history.slice(1)) {
        if (h.from_state !== statePath(replayed.value)) throw new Error(`history row ${h.seq} starts from ${h.from_state}, replay is in ${statePath(replayed.value)}`)
        if (!replayed.can(h.event as never)) throw new Error(`history row ${h.seq} (${h.event_type}) does not replay from ${statePath(replayed.value)}`)
        ;[replayed] = transition(machine, replayed, h.event as never)
        if (h.to_state !== statePath(replayed.value)) throw new Error(`history row ${h.seq} goes to ${h.to_state}, replay to ${statePath(replayed.value)}`)
      }
      const row = await stored()
      if (canonical(row.snapshot.value) !== canonical(replayed.value) || row.snapshot.status !== replayed.status) {
        throw new Error(`history replays to ${JSON.stringify(replayed.value)}, stored is ${JSON.stringify(row.snapshot.value)}`)
      }
      const failure = (replayed.context as InstallationContext).failure
      if (failure?.reason !== (row.snapshot.context as unknown as InstallationContext).failure?.reason) {
        throw new Error(`history replays to failure ${JSON.stringify(failure)}, stored is ${JSON.stringify(row.snapshot.context.failure)}`)
      }
    }),
    { numRuns: ENGINE_RUNS, seed },
  )
  t.comment(`${details.numRuns} sequences through the engine in ${Date.now() - started} ms`)
  t.notOk(details.failed, details.failed
    ? `counterexample (seed ${seed}): ${describe(details.counterexample![0], details.counterexample![1])} with input ${JSON.stringify(details.counterexample![0])}\n${String(details.errorInstance)}`
    : `the engine stores exactly what the pure machine computes, and its history replays to it (${details.numRuns} runs)`)
})
