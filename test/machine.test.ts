import t from 'tap'
import { initialTransition, transition } from 'xstate'
import { getShortestPaths, getSimplePaths } from 'xstate/graph'
import {
  FAILURE_STATES,
  installationMachine,
  type InstallationContext,
  type InstallationInput,
} from '../machines/installation.ts'

/**
 * Model-based tests: xstate/graph walks the machine with every event it can receive, and each
 * generated path is checked against the contract in docs/design.md.
 */

const input: InstallationInput = {
  id: '00000000-0000-4000-8000-000000000001',
  origin: 'app-url',
  stateHash: 'h',
  closeWindow: false,
  autoFinish: false,
  consentTimeoutMs: 1_800_000,
  codeTtlMs: 600_000,
  browserReturnTimeoutMs: 900_000,
}

const after = (delay: string, state: string) => ({ type: `xstate.after.${delay}.installation.${state}` })
const events = [
  { type: 'INSTALLER_REDIRECTED' },
  // The Redirect URL claims an instance; Wix's answer to the exchange says whose the tokens are.
  { type: 'CALLBACK', code: 'c', instanceId: 'claimed', stateHash: 'h' },
  { type: 'CALLBACK', code: 'c', instanceId: 'claimed', stateHash: 'forged' },
  { type: 'CONSENT_DECLINED', error: 'access_denied', stateHash: 'h' },
  { type: 'CONSENT_DECLINED', error: 'access_denied', stateHash: 'forged' },
  { type: 'xstate.done.actor.exchangeCode', output: {} },
  { type: 'xstate.done.actor.exchangeCode', output: { exchangedAt: 'now', instanceId: 'i' } },
  { type: 'xstate.done.actor.confirmInstall', output: { confirmedAt: 'now' } },
  { type: 'xstate.done.actor.confirmInstall', output: { confirmedAt: 'now', supersededBy: 'b' } },
  after('browserWait', 'AppUrlHit.awaitingBrowser'),
  { type: 'SUPERSEDED', by: 'b' },
  { type: 'xstate.error.actor.confirmInstall', error: { code: 'WIX_REJECTED', message: 'not installed', retryable: false } },
  { type: 'xstate.error.actor.exchangeCode', error: { code: 'WIX_REJECTED', message: 'bad code', retryable: false } },
  { type: 'xstate.error.actor.exchangeCode', error: { code: 'WIX_UNAVAILABLE', message: '503', retryable: true, attempts: 8 } },
  after('consentTimeout', 'Authorizing'),
  after('codeDeadline', 'CodeReceived'),
  after('browserReturnTimeout', 'Tokened'),
  after('confirmDeadline', 'AppUrlHit.confirming'),
  after('finishDeadline', 'SetupIncomplete.finishing'),
  { type: 'BROWSER_SENT_ON', destination: 'post-install' },
  { type: 'FINISH' },
  { type: 'xstate.done.actor.finishSetup', output: {} },
  { type: 'xstate.error.actor.finishSetup', error: { code: 'WIX_UNAVAILABLE', message: 'bi-event 503' } },
  { type: 'xstate.error.actor.finishSetup', error: { code: 'REFRESH_TOKEN_REJECTED', message: 'rejected', retryable: false } },
  { type: 'CANCEL' },
  { type: 'UNINSTALLED' },
  { type: 'REFRESH_REJECTED', detail: 'Wix said no' },
] as never[]

const topState = (value: unknown) => (typeof value === 'string' ? value : Object.keys(value as object)[0])
const FAILURE_REASONS = ['exchange_refused', 'exchange_unavailable', 'code_expired', 'consent_declined', 'consent_abandoned', 'cancelled', 'uninstalled', 'reinstall_required', 'superseded']

for (const origin of ['app-url', 'platform'] as const) {
  t.test(`every shortest path from a ${origin} start`, async (t) => {
    const paths = getShortestPaths(installationMachine, { input: { ...input, origin }, events })
    const reached = new Set(paths.map((p) => topState(p.state.value)))
    const happy = ['Authorizing', 'CodeReceived', 'Tokened', 'SetupIncomplete', 'Finished']
    for (const s of happy) t.ok(reached.has(s), `${s} is reachable`)
    for (const s of FAILURE_STATES.filter((s) => s !== 'Superseded')) t.ok(reached.has(s), `failure state ${s} is reachable`)
    t.notOk(reached.has('Superseded'), 'only a webhook-started installation is ever superseded')
    t.equal(reached.has('AppUrlHit'), origin === 'app-url', 'only App URL starts pass through AppUrlHit')
    t.notOk(paths.some((p) => JSON.stringify(p.state.value).includes('confirming')), 'and none confirms by client credentials')

    for (const path of paths) {
      const context = path.state.context as InstallationContext
      const state = topState(path.state.value)
      const steps = path.steps.map((s) => s.event.type).join(' → ') || '(start)'
      if ((FAILURE_STATES as readonly string[]).includes(state)) {
        t.ok(FAILURE_REASONS.includes(context.failure?.reason ?? ''), `${state} via ${steps} records a known reason`)
        t.ok((context.failure?.detail.length ?? 0) > 10, `${state} via ${steps} records a readable detail`)
      } else {
        t.equal(context.failure, null, `${state} via ${steps} records no failure`)
      }
      if (state === 'CodeReceived') {
        t.equal(context.instanceId, null, `${state} via ${steps} does not take the Redirect URL's instanceId`)
        t.equal(context.claimedInstanceId, 'claimed', 'but keeps the claim for the record')
      }
      if (['Tokened', 'SetupIncomplete', 'Finished'].includes(state)) {
        t.equal(context.instanceId, 'i', `${state} via ${steps} knows the instanceId Wix gave`)
      }
    }
  })
}

t.test('every shortest path from an AppInstalled webhook start', async (t) => {
  const webhook = { ...input, origin: 'webhook' as const, stateHash: null, instanceId: 'w', originInstanceId: 'o', browserReturnTimeoutMs: 0 }
  const paths = getShortestPaths(installationMachine, { input: webhook, events })
  const reached = new Set(paths.map((p) => topState(p.state.value)))
  for (const s of ['AppUrlHit', 'Tokened', 'SetupIncomplete', 'Finished']) t.ok(reached.has(s), `${s} is reachable`)
  for (const s of ['Authorizing', 'CodeReceived', 'ConsentAbandoned', 'CodeExpired']) {
    t.notOk(reached.has(s), `${s} is not: no browser, no consent screen, no code`)
  }
  const tokened = paths.find((p) => topState(p.state.value) === 'Tokened')!
  t.same(tokened.steps.map((s) => s.event.type), ['xstate.init', 'xstate.done.actor.confirmInstall'],
    'a client-credentials token proves the install and reaches Tokened')
  for (const path of paths) {
    t.equal((path.state.context as InstallationContext).instanceId, 'w', 'the signed webhook named the instance from the start')
    t.equal((path.state.context as InstallationContext).originInstanceId, 'o', 'and the site it was cloned from')
  }
  const superseded = paths.filter((p) => topState(p.state.value) === 'Superseded')
  t.ok(superseded.length > 0, 'Superseded is reachable: a browser flow Wix confirmed for the instance takes over')
  for (const p of superseded) {
    t.equal((p.state.context as InstallationContext).supersededBy, 'b', 'naming the installation that took over')
  }
  t.notOk(reached.has('AppUrlHit') && paths.some((p) => JSON.stringify(p.state.value).includes('awaitingBrowser')),
    'without WIX_AUTH_FLOW=legacy it never waits for a browser')
  const refused = paths.find((p) => topState(p.state.value) === 'ExchangeFailed')!
  t.equal((refused.state.context as InstallationContext).failure?.reason, 'exchange_refused', 'Wix refusing the token fails it readably')
  const simple = getSimplePaths(installationMachine, { input: webhook, events })
  const overdue = simple.find((p) => p.steps.some((s) => s.event.type.startsWith('xstate.after.confirmDeadline')))
  t.match((overdue?.state.context as InstallationContext | undefined)?.failure,
    { reason: 'exchange_unavailable', detail: /within an hour/ }, 'and a confirmation that never ends gives up after an hour, saying so')
})

t.test('a legacy app\'s webhook start waits, in a state of its own and bounded, then confirms', async (t) => {
  const webhook = { ...input, origin: 'webhook' as const, stateHash: null, instanceId: 'w', browserReturnTimeoutMs: 0, browserWaitMs: 60_000 }
  const paths = getShortestPaths(installationMachine, { input: webhook, events })
  const waiting = paths.find((p) => JSON.stringify(p.state.value) === JSON.stringify({ AppUrlHit: 'awaitingBrowser' }))
  t.ok(waiting, 'it starts in AppUrlHit.awaitingBrowser')
  const tokened = paths.find((p) => topState(p.state.value) === 'Tokened')!
  t.same(tokened.steps.map((s) => s.event.type),
    ['xstate.init', 'xstate.after.browserWait.installation.AppUrlHit.awaitingBrowser', 'xstate.done.actor.confirmInstall'],
    'and confirms by client credentials once its wait is over')
  const superseded = paths.find((p) => topState(p.state.value) === 'Superseded')!
  t.same(superseded.steps.map((s) => s.event.type), ['xstate.init', 'SUPERSEDED'], 'unless the browser flow takes over first')
})

t.test('CLONED_SITE_POLICY=reinstall: a cloned site asks for a reinstall, never confirmed', async (t) => {
  const clone = { ...input, origin: 'webhook' as const, stateHash: null, instanceId: 'w', originInstanceId: 'o', reinstallClone: true }
  const [start] = initialTransition(installationMachine, clone)
  t.equal(start.value, 'ReinstallRequired', 'it ends ReinstallRequired at once')
  t.match(start.context.failure, { reason: 'reinstall_required', detail: /cloned from instance o/ }, 'saying why, in words')
  const [notClone] = initialTransition(installationMachine, { ...clone, originInstanceId: null })
  t.same(notClone.value, { AppUrlHit: 'confirming' }, 'a site that is no clone is confirmed as usual')
})

t.test('simple paths: failure reasons name what happened', async (t) => {
  const paths = getSimplePaths(installationMachine, { input, events })
  const reasonsByState = new Map<string, Set<string>>()
  for (const path of paths) {
    const state = topState(path.state.value)!
    const reason = (path.state.context as InstallationContext).failure?.reason
    if (reason) reasonsByState.set(state, (reasonsByState.get(state) ?? new Set()).add(reason))
  }
  t.same([...reasonsByState.get('ExchangeFailed')!].sort(), ['exchange_refused', 'exchange_unavailable'], 'a 4xx refusal and exhausted retries are told apart')
  t.same([...reasonsByState.get('ConsentAbandoned')!].sort(), ['consent_abandoned', 'consent_declined'], 'declined and timed out at the consent screen are told apart')
  t.same([...reasonsByState.get('CodeExpired')!], ['code_expired'], 'an expired code says so')
  t.same([...reasonsByState.get('ReinstallRequired')!], ['reinstall_required'], 'a rejected refresh token asks for a reinstall')
  t.ok(paths.length > 20, `walked ${paths.length} simple paths`)
})

t.test('every failure state is final except where the app can still act', async (t) => {
  for (const s of FAILURE_STATES) {
    t.equal(installationMachine.states[s]!.type, 'final', `${s} is terminal`)
  }
  t.not(installationMachine.states.Finished!.type, 'final', 'Finished can still learn of an uninstall or a rejected refresh token')
})

t.test('a callback or a decline counts only with the state the installation issued', async (t) => {
  const [start] = initialTransition(installationMachine, input)
  const [authorizing] = transition(installationMachine, start, { type: 'INSTALLER_REDIRECTED' } as never)
  for (const event of [
    { type: 'CALLBACK', code: 'c', instanceId: 'i', stateHash: 'forged' },
    { type: 'CALLBACK', code: 'c', instanceId: 'i' },
    { type: 'CONSENT_DECLINED', error: 'access_denied', stateHash: 'hh' },
  ] as const) {
    t.notOk(authorizing.can(event as never), `${event.type} with ${'stateHash' in event ? `stateHash ${event.stateHash}` : 'no stateHash'} is refused`)
  }
  t.ok(authorizing.can({ type: 'CALLBACK', code: 'c', instanceId: 'i', stateHash: 'h' }), 'with the issued state it is taken')
})

t.test('every state that runs an effect has a deadline: no lost job leaves an install waiting forever', async (t) => {
  const invoking: string[] = []
  const visit = (node: { id: string; invoke: unknown[]; after: unknown[]; states: Record<string, never> }) => {
    if (node.invoke.length) {
      invoking.push(node.id)
      t.ok(node.after.length > 0, `${node.id} invokes ${node.invoke.length} effect(s) and has a delayed transition out`)
    }
    Object.values(node.states).forEach(visit)
  }
  visit(installationMachine.root as never)
  t.ok(invoking.includes('installation.SetupIncomplete.finishing'), `checked ${invoking.join(', ')}`)

  const paths = getSimplePaths(installationMachine, { input: { ...input, autoFinish: true }, events })
  const overdue = paths.find((p) => (p.steps.at(-1)?.event.type as string | undefined) === 'xstate.after.finishDeadline.installation.SetupIncomplete.finishing')
  t.same(overdue?.state.value, { SetupIncomplete: 'waiting' }, 'a finish that never ends goes back to waiting after an hour')
  t.match((overdue?.state.context as InstallationContext | undefined)?.lastError, { code: 'FINISH_TIMED_OUT' }, 'saying why')
  t.ok(overdue?.state.can({ type: 'FINISH' } as never), 'and the app or an admin can ask to finish again')
})
