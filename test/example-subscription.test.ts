import t from 'tap'
import { subscriptionWorkflow, type Billing } from '../examples/subscription/workflow.ts'
import { createEngine } from '../src/index.ts'
import { freshDatabase } from './support/database.ts'
import { identitySealer, silentLog, testClock } from './support/engine.ts'

/**
 * The example under examples/subscription, run by the engine exactly as the installation flow
 * is: a second kind of workflow (a payment webhook, a deadline, a retried effect) with no change
 * to the engine. Billing is a fake that records its calls.
 */

const DAY = 24 * 60 * 60_000

t.test('a subscription workflow on the unchanged engine', async (t) => {
  const db = await freshDatabase()
  t.teardown(db.drop)
  const clock = testClock()
  const calls: string[] = []
  let answers: (() => Promise<void>)[] = []
  const billing: Billing = {
    async activate(input) {
      calls.push(`${input.customerId}:${input.plan}:${input.paymentId}`)
      await (answers.shift() ?? (async () => {}))()
    },
  }
  const engine = createEngine({
    sql: db.sql,
    definitions: [subscriptionWorkflow({ billing, now: clock.now })],
    sealer: identitySealer,
    log: silentLog,
    now: clock.now,
  })
  t.beforeEach(() => {
    calls.length = 0
    answers = []
  })
  const start = (customerId: string) =>
    engine.create('subscription', { customerId, plan: 'pro', paymentDeadlineMs: DAY }, { source: 'signup' })

  await t.test('paid: the webhook starts activation, which is retried while billing is down', async (t) => {
    const sub = await start('cust-1')
    t.equal(sub.state, 'AwaitingPayment', 'a new subscription waits for its payment')
    answers = [async () => Promise.reject(Object.assign(new Error('billing unavailable'), { code: 'BILLING_DOWN' }))]

    const payment = { type: 'PAYMENT_RECEIVED', paymentId: 'pay-1', amountCents: 1_900 } as const
    const paid = await engine.send(sub.id, payment, { source: 'webhook', machine: 'subscription' })
    t.equal(paid.accepted, true, 'the payment webhook is accepted')
    await engine.runner.idle()
    t.equal((await engine.get(sub.id))?.state, 'Activating', 'the first activation failed: still activating')
    t.same(calls, ['cust-1:pro:pay-1'], 'billing was called once, with the payment')

    clock.advance(60_000)
    await engine.runner.tick()
    await engine.runner.idle()
    const active = await engine.get(sub.id)
    t.equal(active?.state, 'Active', 'the retry activated the plan')
    t.equal(active?.context.activatedAt, clock.now().toISOString(), 'at the time the retry ran')
    t.same(calls, ['cust-1:pro:pay-1', 'cust-1:pro:pay-1'], 'billing was called exactly twice')

    const replay = await engine.send(sub.id, payment, { source: 'webhook' })
    t.equal(replay.accepted, false, 'a redelivered webhook changes nothing')
    const history = await engine.history(sub.id)
    t.same(
      history.map((h) => h.to_state),
      ['AwaitingPayment', 'Activating', 'Active'],
      'history shows one payment and one activation',
    )
  })

  await t.test('unpaid: the deadline is a stored timer that expires the subscription', async (t) => {
    const sub = await start('cust-2')
    clock.advance(DAY - 1_000)
    await engine.runner.tick()
    await engine.runner.idle()
    t.equal((await engine.get(sub.id))?.state, 'AwaitingPayment', 'not before the deadline')
    clock.advance(2_000)
    await engine.runner.tick()
    await engine.runner.idle()
    const expired = await engine.get(sub.id)
    t.equal(expired?.state, 'Expired', 'expired after it')
    t.equal(expired?.reason, 'payment_deadline', 'with a reason an admin can filter by')
    const payment = { type: 'PAYMENT_RECEIVED', paymentId: 'pay-2', amountCents: 900 } as const
    const late = await engine.send(sub.id, payment, { source: 'webhook' })
    t.equal(late.accepted, false, 'a payment after the deadline is not accepted')
    t.same(calls, [], 'and billing was never called')
  })

  await t.test('refused: a final billing error ends the subscription without retries', async (t) => {
    const sub = await start('cust-3')
    const declined = Object.assign(new Error('card declined'), { code: 'DECLINED', retryable: false })
    answers = [async () => Promise.reject(declined)]
    await engine.send(sub.id, { type: 'PAYMENT_RECEIVED', paymentId: 'pay-3', amountCents: 900 }, { source: 'webhook' })
    await engine.runner.idle()
    clock.advance(60_000)
    await engine.runner.tick()
    await engine.runner.idle()
    const failed = await engine.get(sub.id)
    t.equal(failed?.state, 'ActivationFailed', 'the refusal reached the machine')
    t.equal(failed?.reason, 'activation_refused', 'with its reason')
    t.same(calls, ['cust-3:pro:pay-3'], 'billing was called once, never retried')
  })

  await t.test('the types follow the machine', async (t) => {
    const sub = await start('cust-4')
    // @ts-expect-error SHIP is not an event of the subscription machine: a compile error.
    const wrong = await engine.send(sub.id, { type: 'SHIP' }, { source: 'test', machine: 'subscription' })
    t.equal(wrong.accepted, false, 'and at run time it is rejected without a change')
    // @ts-expect-error a PAYMENT_RECEIVED needs its paymentId and amountCents.
    await engine.send(sub.id, { type: 'PAYMENT_RECEIVED' }, { source: 'test' })
    t.equal((await engine.get(sub.id))?.state, 'AwaitingPayment', 'a payment without an amount moves nothing')
    // Compile-time only (never called): create takes the machine's input.
    const typeOnly = () =>
      // @ts-expect-error `gold` is not a plan.
      engine.create('subscription', { customerId: 'x', plan: 'gold', paymentDeadlineMs: DAY }, { source: 'test' })
    void typeOnly
    // @ts-expect-error only the machines the engine was created with can be started.
    await t.rejects(engine.create('parcel', {}, { source: 'test' }), 'an unknown machine is refused at run time too')
  })
})
