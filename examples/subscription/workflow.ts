import { fromPromise } from 'xstate'
// In an app of your own: `from 'wix-install-engine'`.
import { defineWorkflow } from '../../src/index.ts'
import { subscriptionMachine, type ActivateInput } from './machine.ts'

/** The billing system the `activate` effect calls; throw `{ retryable: false }` to refuse for good. */
export interface Billing {
  activate(input: ActivateInput, o: { signal: AbortSignal }): Promise<void>
}

/** The subscription machine with its effect bound, as the engine runs it. */
export function subscriptionWorkflow(deps: { billing: Billing; now: () => Date }) {
  const machine = subscriptionMachine.provide({
    actors: {
      activate: fromPromise<{ activatedAt: string }, ActivateInput>(async ({ input, signal }) => {
        // The engine adds `attempt` to the input; the billing system only needs what the machine gave.
        const { customerId, plan, paymentId } = input
        await deps.billing.activate({ customerId, plan, paymentId }, { signal })
        return { activatedAt: deps.now().toISOString() }
      }),
    },
  })
  return defineWorkflow({
    name: 'subscription',
    version: 1,
    machine,
    project: (state) => ({
      key: String(state.context.customerId),
      reason: (state.context.failure as { reason: string } | null)?.reason ?? null,
    }),
    retry: { maxAttempts: 5, baseDelayMs: 1_000, maxDelayMs: 30_000 },
  })
}
