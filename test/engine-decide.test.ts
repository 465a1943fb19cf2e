import t from 'tap'
import { decide, decideStart, type Accepted, type DecideInput, type Rejected } from '../src/engine/decide.ts'
import type { WorkflowDefinition } from '../src/engine/definition.ts'
import { stepper } from '../src/engine/snapshot.ts'
import type { WorkflowRow } from '../src/engine/store.ts'
import type { PersistedState } from '../src/engine/types.ts'
import type { FollowUp } from '../src/engine/wait.ts'
import type { AnyEvent, Workflow } from '../src/engine/workflow.ts'
import { INSTALLATION_MACHINE_VERSION, installationMachine, type InstallationInput } from '../machines/installation.ts'

/**
 * `decide` and `decideStart` on the installation machine, with no database: what the engine
 * writes for an event, or why it takes none. The engine's tests prove the writes; these, the decisions.
 */

const def: WorkflowDefinition = {
  name: 'installation',
  version: INSTALLATION_MACHINE_VERSION,
  machine: installationMachine,
  project: (s) => ({ key: (s.context.claimedInstanceId as string | null) ?? null, reason: (s.context.failure as { reason: string } | null)?.reason ?? null }),
}
const step = stepper(installationMachine)
const at = new Date('2026-01-01T00:00:00Z')
const input: InstallationInput = {
  id: '00000000-0000-4000-8000-000000000001', origin: 'app-url', stateHash: 'h', closeWindow: false, autoFinish: false,
  consentTimeoutMs: 1_800_000, codeTtlMs: 600_000, browserReturnTimeoutMs: 900_000,
}
const callback = { type: 'CALLBACK', code: 'the-code', instanceId: 'claimed', stateHash: 'h' }
const exchanged = { type: 'xstate.done.actor.exchangeCode', output: { exchangedAt: 'now', instanceId: 'i' } }

/** A stored row holding `state` at `version`, as the engine reads it. */
const rowOf = (state: PersistedState, version: number, extra: Partial<WorkflowRow & { job_held: boolean }> = {}): WorkflowRow => ({
  id: input.id, machine: 'installation', machine_version: def.version, ...def.project(state), state: 'any',
  snapshot: state, version, created_at: at, updated_at: at, ...extra,
})

/** The row after start and `events`, each accepted in turn. */
function rowAfter(...events: AnyEvent[]) {
  const start = decideStart('installation', step, { ...input }, [{ type: 'INSTALLER_REDIRECTED' }], 'test')
  let row = rowOf(start.state, start.history.length)
  for (const event of events) {
    const d = decide({ row, fresh: true, def, step, event, source: 'test', fromJob: false, at }) as Accepted
    row = rowOf(d.state, d.workflow.version)
  }
  return row
}

const decideOn = (row: WorkflowRow, event: AnyEvent, o: Partial<DecideInput> = {}) =>
  decide({ row, fresh: true, def, step, event, source: 'route:redirect', fromJob: false, at, ...o })

t.test('decideStart: the start and the events right after it, as one write', async (t) => {
  const d = decideStart('installation', step, { ...input }, [{ type: 'INSTALLER_REDIRECTED' }], 'route:app-url')
  t.same(d.state.value, 'Authorizing', 'the app-url start goes to the installer')
  t.same(d.history.map((h) => [h.seq, h.event_type, h.from_state, h.to_state, h.source]), [
    [1, 'xstate.init', null, 'AppUrlHit.redirecting', 'route:app-url'],
    [2, 'INSTALLER_REDIRECTED', 'AppUrlHit.redirecting', 'Authorizing', 'route:app-url'],
  ], 'one history row per step, numbered from 1')
  t.equal(d.contexts.length, 2, 'the context after each step')
  t.same(d.plan.effects, [], 'no effect runs at the consent screen')
  t.same(d.plan.timers.map((x) => [x.name, x.delayMs]), [['xstate.after.consentTimeout.installation.Authorizing', input.consentTimeoutMs]],
    'the consent timeout is set')
  t.throws(() => decideStart('installation', step, { ...input }, [{ type: 'FINISH' }], 'x'),
    /installation: FINISH is not accepted right after start/, 'an event the start does not take refuses the create')
})

t.test('decide: an accepted callback plans the exchange and redacts the code', async (t) => {
  const row = rowAfter()
  const d = decideOn(row, callback) as Accepted
  t.equal(d.accepted, true)
  t.equal(d.workflow.statePath, 'CodeReceived', 'the state it leads to')
  t.equal(d.workflow.version, row.version + 1, 'one step: the row version moves on by one')
  t.equal(d.workflow.key, 'claimed', 'the projection of the new state')
  t.same(d.workflow.updatedAt, at)
  t.same(d.history, [{
    seq: row.version + 1, event_type: 'CALLBACK', event: { ...callback, code: '[redacted]' },
    from_state: 'Authorizing', to_state: 'CodeReceived', source: 'route:redirect',
  }], 'its history row, the code redacted')
  t.same(d.plan.effects, [{ name: 'exchangeCode', src: 'exchangeCode', input: { installationId: input.id, claimedInstanceId: 'claimed', code: 'the-code' } }],
    'the exchange is planned with the code (the job seals it)')
  t.same(d.plan.cancelledTimers, ['xstate.after.consentTimeout.installation.Authorizing'], 'the consent timeout is cancelled')
  t.same(d.plan.timers.map((x) => [x.name, x.delayMs]), [['xstate.after.codeDeadline.installation.CodeReceived', input.codeTtlMs]],
    'the code deadline is set')
  t.same(d.plan.activeInvokes, ['exchangeCode'])
  t.equal(d.folded, undefined, 'no follow-up rides along')
})

t.test('decide: what the row does not take', async (t) => {
  const row = rowAfter()
  const forged = decideOn(row, { ...callback, stateHash: 'forged' }) as Rejected
  t.same(forged, { accepted: false, workflow: forged.workflow, stale: false }, 'a callback with a forged state is rejected')
  t.equal(forged.workflow.statePath, 'Authorizing', 'with the workflow as it stands')
  t.equal(forged.workflow.version, row.version)

  const receiving = rowAfter(callback)
  t.match(decideOn({ ...receiving, job_held: false } as WorkflowRow, exchanged, { fromJob: true }), { accepted: false, stale: true },
    "a run's result, read fresh, whose run no longer holds its job is stale")
  t.match(decideOn({ ...receiving, job_held: true } as WorkflowRow, exchanged, { fromJob: true }), { accepted: true },
    'while the run holds its job, its result is taken')
  t.match(decideOn(receiving, exchanged, { fromJob: true, fresh: false }), { accepted: true },
    "on this process's last view of the row, the job is not judged: the write's fence is")

  const failed = rowAfter(callback, { type: 'xstate.error.actor.exchangeCode', error: { code: 'WIX_REJECTED', message: 'bad code', retryable: false } })
  t.equal(failed.snapshot.status, 'done', 'a refused exchange ends the installation')
  t.match(decideOn(failed, { type: 'CANCEL' }), { accepted: false, stale: false }, 'an ended installation takes no more events')

  t.throws(() => decideOn({ ...row, machine_version: def.version + 1 }, callback), { code: 'MACHINE_VERSION_UNSUPPORTED' },
    'a snapshot of a newer machine is refused')
})

t.test('decide: a follow-up waiting for the state rides in the same write', async (t) => {
  const row = rowAfter(callback)
  const follow = (o: Partial<FollowUp> = {}): FollowUp => ({
    done: (w: Workflow) => w.state === 'Tokened', next: () => ({ type: 'BROWSER_SENT_ON', destination: 'post-install' }),
    source: 'route:redirect', ...o,
  })
  const f = follow()
  const d = decideOn(row, exchanged, { follow: f, source: 'effect:exchangeCode', fromJob: true, fresh: false }) as Accepted
  t.equal(d.folded, f, 'the follow-up is taken up')
  t.equal(d.workflow.statePath, 'SetupIncomplete.waiting', 'the write leaves the state after both steps')
  t.equal(d.workflow.version, row.version + 2, 'two steps: the version moves on by two')
  t.same(d.history.map((h) => [h.seq, h.event_type, h.from_state, h.to_state, h.source]), [
    [row.version + 1, 'xstate.done.actor.exchangeCode', 'CodeReceived', 'Tokened', 'effect:exchangeCode'],
    [row.version + 2, 'BROWSER_SENT_ON', 'Tokened', 'SetupIncomplete.waiting', 'route:redirect'],
  ], 'two history rows, each with its sender')
  t.equal(d.contexts.length, 2)
  t.same(d.plan.timers, [], 'the browser-return timer Tokened would set is never written')

  const alone = decideOn(row, exchanged, { fromJob: true, fresh: false }) as Accepted
  t.equal(alone.workflow.statePath, 'Tokened', 'without a follow-up, one step')
  t.same(alone.plan.timers.map((x) => [x.name, x.delayMs]), [['xstate.after.browserReturnTimeout.installation.Tokened', input.browserReturnTimeoutMs]],
    'and the browser-return timer is set')

  const aborted = decideOn(row, exchanged, { follow: follow({ signal: AbortSignal.abort() }), fromJob: true, fresh: false }) as Accepted
  t.same([aborted.folded, aborted.history.length], [undefined, 1], 'a follow-up whose caller left rides nowhere')
  const throwing = follow({ done: () => { throw new Error('caller bug') } })
  const thrown = decideOn(row, exchanged, { follow: throwing, fromJob: true, fresh: false }) as Accepted
  t.same([thrown.folded, thrown.history.length], [undefined, 1], "a caller's predicate that throws counts as no follow-up")
  const elsewhere = decideOn(row, exchanged, { follow: follow({ done: (w) => w.state === 'Finished' }), fromJob: true, fresh: false }) as Accepted
  t.same([elsewhere.folded, elsewhere.history.length], [undefined, 1], 'nor does one waiting for another state')
})
