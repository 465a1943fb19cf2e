import { assign, fromPromise, setup } from 'xstate'

/**
 * A subscription that waits for its first payment: the payment provider's webhook sends
 * `PAYMENT_RECEIVED`; without one before the deadline the subscription expires. Once paid, the
 * `activate` effect turns the plan on at the billing system (retried while that system is down).
 * Pure: the effect is a placeholder that `subscriptionWorkflow` replaces with the real one.
 */
export interface SubscriptionInput {
  customerId: string
  plan: 'basic' | 'pro'
  paymentDeadlineMs: number
}

export interface SubscriptionContext extends SubscriptionInput {
  paymentId: string | null
  activatedAt: string | null
  failure: { reason: string; detail: string } | null
}

export type SubscriptionEvent =
  | { type: 'PAYMENT_RECEIVED'; paymentId: string; amountCents: number }
  | { type: 'CANCEL' }

export interface ActivateInput {
  customerId: string
  plan: SubscriptionInput['plan']
  paymentId: string
}

const fail = (reason: string, detail: string) => ({ type: 'fail', params: { reason, detail } }) as const

export const subscriptionMachine = setup({
  types: {
    input: {} as SubscriptionInput,
    context: {} as SubscriptionContext,
    events: {} as SubscriptionEvent,
  },
  actors: {
    activate: fromPromise<{ activatedAt: string }, ActivateInput>(async () => {
      throw new Error('activate is bound by subscriptionWorkflow')
    }),
  },
  actions: {
    fail: assign((_, failure: { reason: string; detail: string }) => ({ failure })),
  },
  guards: {
    paidSomething: ({ event }) => event.type === 'PAYMENT_RECEIVED' && event.amountCents > 0,
  },
  delays: {
    paymentDeadline: ({ context }) => context.paymentDeadlineMs,
  },
}).createMachine({
  id: 'subscription',
  context: ({ input }) => ({ ...input, paymentId: null, activatedAt: null, failure: null }),
  initial: 'AwaitingPayment',
  states: {
    AwaitingPayment: {
      after: {
        paymentDeadline: { target: 'Expired', actions: fail('payment_deadline', 'No payment arrived in time.') },
      },
      on: {
        PAYMENT_RECEIVED: {
          guard: 'paidSomething',
          target: 'Activating',
          actions: assign({ paymentId: ({ event }) => event.paymentId }),
        },
        CANCEL: { target: 'Cancelled', actions: fail('cancelled', 'Cancelled before payment.') },
      },
    },
    Activating: {
      invoke: {
        id: 'activate',
        src: 'activate',
        input: ({ context }) => ({ customerId: context.customerId, plan: context.plan, paymentId: context.paymentId! }),
        onDone: { target: 'Active', actions: assign({ activatedAt: ({ event }) => event.output.activatedAt }) },
        onError: {
          target: 'ActivationFailed',
          actions: fail('activation_refused', 'The billing system refused to activate the plan.'),
        },
      },
    },
    Active: { on: { CANCEL: 'Cancelled' } },
    Expired: { type: 'final' },
    Cancelled: { type: 'final' },
    ActivationFailed: { type: 'final' },
  },
})
