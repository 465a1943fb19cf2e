import { and, assign, fromPromise, setup } from 'xstate'

/**
 * One Wix app installation, from the App URL hit to the APP_FINISHED_CONFIGURATION bi-event.
 * Pure: no I/O here. The effects (`exchangeCode`, `finishSetup`) are declared by name and bound
 * with `machine.provide({ actors })`; delays are persisted as timer rows by the engine.
 */

/**
 * Bump on any change that makes stored snapshots mean something else.
 * 2: AppUrlHit has substates (webhook-started installs confirm there); the instance id is only
 * taken from Wix's answer, the Redirect URL's claim is kept apart as `claimedInstanceId`.
 */
export const INSTALLATION_MACHINE_VERSION = 2

export const FAILURE_STATES = [
  'ExchangeFailed',
  'CodeExpired',
  'ConsentAbandoned',
  'Cancelled',
  'Uninstalled',
  'ReinstallRequired',
  'Superseded',
] as const

export type FailureReason =
  | 'exchange_refused'
  | 'exchange_unavailable'
  | 'code_expired'
  | 'consent_declined'
  | 'consent_abandoned'
  | 'cancelled'
  | 'uninstalled'
  | 'reinstall_required'
  | 'superseded'

export interface Failure {
  reason: FailureReason
  detail: string
}

/** A failed effect as the engine reports it: safe to store, never a secret. */
export interface EffectError {
  code: string
  message: string
  retryable?: boolean
  status?: number
  wixRequestId?: string
  attempts?: number
}

/**
 * How the installation began: Wix's App URL, the app's own platform (both the legacy OAuth flow),
 * or Wix's signed `AppInstalled` webhook (new apps: no browser, no code, client credentials).
 */
export type InstallationOrigin = 'app-url' | 'platform' | 'webhook'

export interface InstallationInput {
  id: string
  origin: InstallationOrigin
  /** sha256 (hex) of the OAuth `state` sent to Wix: checked at the callback. Null for webhooks. */
  stateHash: string | null
  /** Known from the start only when a signed webhook named it. */
  instanceId?: string
  /** The site this one was cloned from (`AppInstalled`'s originInstanceId). */
  originInstanceId?: string | null
  closeWindow: boolean
  autoFinish: boolean
  consentTimeoutMs: number
  codeTtlMs: number
  browserReturnTimeoutMs: number
  /**
   * The App URL's `token`, sealed by the engine (never in the clear): sent to Wix's installer again
   * if the browser must fetch a new code. Absent for platform- and webhook-started installs.
   */
  appUrlToken?: string | null
  /**
   * A webhook-started install of a legacy app waits this long for the owner's browser flow to
   * bring a refresh token before confirming by client credentials; 0 (or absent): it does not wait.
   */
  browserWaitMs?: number
  /** A cloned site whose owner must reinstall (CLONED_SITE_POLICY=reinstall): never confirmed. */
  reinstallClone?: boolean
}

export interface InstallationContext extends Omit<InstallationInput, 'id' | 'instanceId' | 'originInstanceId'> {
  id: string
  /** The instance Wix says this installation's tokens belong to; null until Wix has said so. */
  instanceId: string | null
  /** The instance the Redirect URL named: a claim anyone can edit, kept for the record only. */
  claimedInstanceId: string | null
  originInstanceId: string | null
  /** A webhook-started installation ended because this browser-flow installation carries the install on. */
  supersededBy?: string | null
  failure: Failure | null
  /** The last effect failure that did not end the installation (a finish to try again). */
  lastError: EffectError | null
  /**
   * Codes spent by a run of the exchange that died before storing the tokens, answered by sending
   * the browser back to Wix for a new one: at most `MAX_DETOURS`. Snapshots stored before
   * detours existed lack both fields: they read as none (the machine's meaning is unchanged, so its version is too).
   */
  detours?: number
  /** A spent code is waiting for its browser, to send it back through Wix's installer. */
  detourPending?: boolean
}

export type InstallationEvent =
  | { type: 'INSTALLER_REDIRECTED' }
  /** `stateHash`: the hash of the OAuth state the browser came back with. */
  | { type: 'CALLBACK'; code: string; instanceId: string; stateHash: string }
  | { type: 'CONSENT_DECLINED'; error: string; description?: string; stateHash: string }
  | { type: 'BROWSER_SENT_ON'; destination: 'close-window' | 'post-install' }
  /** The waiting browser goes back through Wix's installer with a fresh state (`stateHash`); `note` says why. */
  | { type: 'BROWSER_SENT_BACK'; stateHash: string; note: string }
  | { type: 'FINISH' }
  | { type: 'CANCEL'; detail?: string }
  | { type: 'UNINSTALLED' }
  | { type: 'REFRESH_REJECTED'; detail: string }
  /** A browser flow Wix confirmed for the same instance carries this webhook-started install on. */
  | { type: 'SUPERSEDED'; by: string }

export interface ExchangeInput {
  installationId: string
  /** What the Redirect URL said; the tokens decide. */
  claimedInstanceId: string
  code: string
  /** Which run of the exchange this is, added by the engine (1: the first). */
  attempt?: number
}
export interface ExchangeOutput {
  exchangedAt: string
  /** The instance Wix says the tokens belong to, and the only one they are stored under. */
  instanceId: string
  /** Set when the Redirect URL named another instance than the tokens': what happened, in words. */
  mismatch?: string
  /** The webhook-started installations of this instance that this one took over. */
  supersedes?: string[]
}
export interface FinishInput {
  installationId: string
  instanceId: string
}
export interface ConfirmInput {
  installationId: string
  instanceId: string
}
export interface ConfirmOutput {
  confirmedAt: string
  /** Not confirmed by client credentials: a browser-flow installation already holds the instance's refresh token. */
  supersededBy?: string
}

const unbound = (name: string) => async () => {
  throw new Error(`effect ${name} is not bound: provide it with machine.provide({ actors })`)
}

/**
 * Spent codes answered with a detour to Wix's installer; the next one fails as any refused code.
 * Each detour needs fresh evidence of a run that died after reaching Wix (never a refusal of a
 * code's first run), so the bound is against a process that crashes on every exchange, not
 * against Wix: two, since one process dying in the exchange window does not make the next
 * death there unlikely (a rolling restart, an overloaded host), and a lost install costs the
 * owner a reinstall they may never do.
 */
export const MAX_DETOURS = 2
/** How long a spent code waits for its browser's next look at the waiting page (it looks every few seconds). */
export const DETOUR_WINDOW_MS = 2 * 60_000
/** The effect's error for a code that an earlier run of the exchange sent to Wix and died before storing the tokens. */
export const CODE_SPENT = 'CODE_SPENT'

const fail = (reason: FailureReason, detail: string) =>
  ({ type: 'fail', params: { reason, detail } }) as const

const describeError = (error: unknown): string => {
  const e = error as Partial<EffectError> | undefined
  const parts = [e?.message ?? 'unknown error']
  if (e?.wixRequestId) parts.push(`Wix request id ${e.wixRequestId}`)
  if (e?.attempts) parts.push(`after ${e.attempts} attempt(s)`)
  return parts.join('; ')
}

const toEffectError = (error: unknown): EffectError => {
  const e = (error ?? {}) as Partial<EffectError>
  return {
    code: e.code ?? 'UNKNOWN',
    message: e.message ?? 'unknown error',
    ...(e.status !== undefined && { status: e.status }),
    ...(e.wixRequestId && { wixRequestId: e.wixRequestId }),
    ...(e.attempts !== undefined && { attempts: e.attempts }),
  }
}

// With AUTO_FINISH the bi-event goes out on arrival; a failed finish then waits for the app.
const toSetup = [
  { guard: 'autoFinish', target: 'SetupIncomplete.finishing' },
  { target: 'SetupIncomplete' },
] as const

export const installationMachine = setup({
  types: {
    input: {} as InstallationInput,
    context: {} as InstallationContext,
    events: {} as InstallationEvent,
  },
  actors: {
    exchangeCode: fromPromise<ExchangeOutput, ExchangeInput>(unbound('exchangeCode')),
    confirmInstall: fromPromise<ConfirmOutput, ConfirmInput>(unbound('confirmInstall')),
    finishSetup: fromPromise<{ finishedAt: string }, FinishInput>(unbound('finishSetup')),
  },
  actions: {
    fail: assign((_, failure: Failure) => ({ failure })),
    /** Tokens could not be had: refused outright (a 4xx), or Wix stayed unavailable. */
    exchangeFailed: assign(({ context, event }, { what }: { what: string }) => {
      const error = (event as { error?: unknown }).error
      // A claim stays a claim: support must be able to tell the owner whose site it named.
      const claim = context.instanceId === null && context.claimedInstanceId
        ? ` Its Redirect URL claimed instance ${context.claimedInstanceId}; Wix never confirmed that claim, so no tokens were stored for it.`
        : ''
      return {
        failure: {
          reason: (error as EffectError | undefined)?.retryable === false ? ('exchange_refused' as const) : ('exchange_unavailable' as const),
          detail: `${what}: ${describeError(error)}.${claim}`,
        },
        lastError: toEffectError(error),
      }
    }),
    /** Ends a webhook-started install that the browser install `by` carries on: each names the other. */
    supersede: assign((_, { by }: { by: string }) => ({
      supersededBy: by,
      failure: {
        reason: 'superseded' as const,
        detail: `The owner's browser install ${by}, which Wix confirmed for this instance, carries this install on.`,
      },
    })),
    refreshRejected: assign(({ event }) => {
      const said = event.type === 'REFRESH_REJECTED' && typeof event.detail === 'string' ? event.detail.trim() : ''
      return {
        failure: {
          reason: 'reinstall_required' as const,
          detail: `Wix rejected this installation's tokens${said ? `: ${said}` : ''}. The site owner must reinstall the app.`,
        },
      }
    }),
  },
  guards: {
    startedFromPlatform: ({ context }) => context.origin === 'platform',
    startedByWebhook: ({ context }) => context.origin === 'webhook',
    waitsForBrowser: ({ context }) => (context.browserWaitMs ?? 0) > 0,
    reinstallClone: ({ context }) => context.reinstallClone === true && context.originInstanceId !== null,
    confirmFoundBrowserFlow: ({ event }) => typeof (event as { output?: Partial<ConfirmOutput> }).output?.supersededBy === 'string',
    live: ({ context }) => context.failure === null,
    /**
     * The browser came back with the state this installation issued. Plain equality is safe on
     * SHA-256 hashes: how long the comparison takes says nothing about the state behind them.
     */
    stateMatches: ({ context, event }) => 'stateHash' in event && event.stateHash === context.stateHash,
    callbackComplete: ({ event }) =>
      event.type === 'CALLBACK' && typeof event.code === 'string' && event.code !== '' &&
      typeof event.instanceId === 'string' && event.instanceId !== '',
    autoFinish: ({ context }) => context.autoFinish,
    exchangeNamesInstance: ({ event }) => {
      const id = (event as { output?: Partial<ExchangeOutput> }).output?.instanceId
      return typeof id === 'string' && id !== ''
    },
    appCredentialsRefused: ({ event }) => (event as { error?: EffectError }).error?.code === 'WIX_CLIENT_REJECTED',
    errorIsFinal: ({ event }) => (event as { error?: EffectError }).error?.retryable === false,
    refreshRejected: ({ event }) =>
      (event as { error?: EffectError }).error?.code === 'REFRESH_TOKEN_REJECTED',
    /** A dead run spent the code, and this installation has detours left (`MAX_DETOURS`). */
    codeSpentOnce: ({ context, event }) =>
      (event as { error?: EffectError }).error?.code === CODE_SPENT && (context.detours ?? 0) < MAX_DETOURS,
    detourPending: ({ context }) => context.detourPending === true,
    /** Sent back once already: a browser whose answer was lost may be sent back again, with another state. */
    sendBack: ({ context }) => context.detourPending === true || (context.detours ?? 0) > 0,
  },
  delays: {
    // While a spent code waits for its browser, the wait is the detour window, not the consent timeout.
    consentTimeout: ({ context }) => (context.detourPending ? DETOUR_WINDOW_MS : context.consentTimeoutMs),
    codeDeadline: ({ context }) => context.codeTtlMs,
    browserReturnTimeout: ({ context }) => context.browserReturnTimeoutMs,
    browserWait: ({ context }) => context.browserWaitMs ?? 0,
    confirmDeadline: 60 * 60_000,
    finishDeadline: 60 * 60_000,
  },
}).createMachine({
  id: 'installation',
  // XState's pure `transition()` builds a throwaway actor, without input, on every call: a context
  // that builds without one spares each transition a thrown TypeError (most of its cost).
  context: ({ input }) => ({
    ...input,
    instanceId: input?.instanceId ?? null,
    claimedInstanceId: null,
    originInstanceId: input?.originInstanceId ?? null,
    appUrlToken: input?.appUrlToken ?? null,
    supersededBy: null,
    failure: null,
    lastError: null,
    detours: 0,
    detourPending: false,
  }),
  initial: 'AppUrlHit',
  on: {
    UNINSTALLED: {
      // Failure states are final: an uninstall never rewrites why an installation failed.
      guard: 'live',
      target: '.Uninstalled',
      actions: fail('uninstalled', 'The app was uninstalled from the site.'),
    },
    // Wix confirmed a legacy browser flow for this instance: that installation carries the install
    // on (with its refresh token), and this webhook-started one ends, each naming the other.
    SUPERSEDED: {
      guard: and(['live', 'startedByWebhook']),
      target: '.Superseded',
      actions: { type: 'supersede', params: ({ event }) => ({ by: event.by }) },
    },
  },
  states: {
    AppUrlHit: {
      description: 'The install has begun: a browser on its way to the Wix installer, or a webhook being confirmed.',
      initial: 'redirecting',
      states: {
        redirecting: {
          description: 'Wix opened the App URL; the browser is about to go to the installer.',
          always: [
            { guard: 'startedFromPlatform', target: '#installation.Authorizing' },
            {
              guard: and(['startedByWebhook', 'reinstallClone']),
              target: '#installation.ReinstallRequired',
              actions: assign(({ context }) => ({
                failure: {
                  reason: 'reinstall_required' as const,
                  detail: `This site was cloned from instance ${context.originInstanceId}. CLONED_SITE_POLICY is reinstall: `
                    + 'as Wix advises for legacy apps, the site owner must reinstall the app.',
                },
              })),
            },
            { guard: and(['startedByWebhook', 'waitsForBrowser']), target: 'awaitingBrowser' },
            { guard: 'startedByWebhook', target: 'confirming' },
          ],
          on: { INSTALLER_REDIRECTED: '#installation.Authorizing' },
        },
        awaitingBrowser: {
          description: "Wix reported the install by webhook; a legacy app's owner may be on the way back to the "
            + 'Redirect URL. Waits a bounded time for that flow, which takes over if Wix confirms it, then confirms.',
          after: { browserWait: 'confirming' },
        },
        confirming: {
          description: 'Wix reported the install by webhook; a client-credentials token proves it.',
          // A backstop: whatever becomes of the confirmation job, the install does not wait forever.
          // Confirming again (a refused app secret) starts the hour anew.
          after: {
            confirmDeadline: {
              target: '#installation.ExchangeFailed',
              actions: fail('exchange_unavailable', 'Wix did not confirm the install by client credentials within an hour.'),
            },
          },
          invoke: {
            id: 'confirmInstall',
            src: 'confirmInstall',
            input: ({ context }) => ({ installationId: context.id, instanceId: context.instanceId! }),
            onDone: [
              {
                guard: 'confirmFoundBrowserFlow',
                target: '#installation.Superseded',
                actions: { type: 'supersede', params: ({ event }) => ({ by: event.output.supersededBy! }) },
              },
              { target: '#installation.Tokened' },
            ],
            onError: [
              // Wix refused the app's own secret, not this install: a configuration fault that
              // must not end it. Confirm again (another round of retries) until the secret is fixed.
              {
                guard: 'appCredentialsRefused',
                target: 'confirming',
                reenter: true,
                actions: assign({ lastError: ({ event }) => toEffectError(event.error) }),
              },
              {
                target: '#installation.ExchangeFailed',
                actions: { type: 'exchangeFailed', params: { what: 'Wix did not grant a client-credentials token for this instance' } },
              },
            ],
          },
        },
      },
      on: {
        CANCEL: { target: 'Cancelled', actions: fail('cancelled', 'Cancelled by an admin.') },
      },
    },
    Authorizing: {
      description: 'The browser is at the Wix consent screen; waiting for the Redirect URL. After a code spent by '
        + 'a process that died, the waiting browser is sent back here for a new one.',
      after: {
        consentTimeout: [
          {
            guard: 'detourPending',
            target: 'ExchangeFailed',
            actions: assign({
              detourPending: false,
              failure: ({ context }) => ({
                reason: 'exchange_refused' as const,
                detail: `The code exchange failed: ${describeError(context.lastError)}. `
                  + 'No browser was waiting to be sent back to Wix for a new code: the site owner must reinstall the app.',
              }),
            }),
          },
          {
            target: 'ConsentAbandoned',
            actions: fail('consent_abandoned', 'Nobody came back from the Wix consent screen in time.'),
          },
        ],
      },
      on: {
        // Re-entered: the consent timeout starts over, at its full length.
        BROWSER_SENT_BACK: {
          guard: 'sendBack',
          target: 'Authorizing',
          reenter: true,
          actions: assign({ stateHash: ({ event }) => event.stateHash, detourPending: false }),
        },
        CALLBACK: {
          guard: and(['stateMatches', 'callbackComplete']),
          target: 'CodeReceived',
          actions: assign({ claimedInstanceId: ({ event }) => event.instanceId }),
        },
        CONSENT_DECLINED: {
          guard: 'stateMatches',
          target: 'ConsentAbandoned',
          actions: assign({
            failure: ({ event }) => ({
              reason: 'consent_declined' as const,
              detail: `Wix returned "${event.error}" from the consent screen${
                event.description ? `: ${event.description}` : ''
              }.`,
            }),
          }),
        },
        CANCEL: { target: 'Cancelled', actions: fail('cancelled', 'Cancelled by an admin.') },
      },
    },
    CodeReceived: {
      description: 'Wix sent an authorization code; exchanging it for tokens (once).',
      invoke: {
        id: 'exchangeCode',
        src: 'exchangeCode',
        input: ({ context, event }) => {
          if (event.type !== 'CALLBACK') throw new Error(`CodeReceived entered by ${event.type}`)
          return { installationId: context.id, claimedInstanceId: event.instanceId, code: event.code }
        },
        // Only an exchange that says whose tokens it stored moves on: the instance id is Wix's.
        onDone: {
          guard: 'exchangeNamesInstance',
          target: 'Tokened',
          actions: assign({ instanceId: ({ event }) => (event.output as ExchangeOutput).instanceId }),
        },
        onError: [
          // The browser may still be waiting: it is sent back to Wix for a new code, its old
          // state void (no callback matches a null hash) until it is.
          {
            guard: 'codeSpentOnce',
            target: 'Authorizing',
            actions: assign({
              stateHash: null,
              detourPending: true,
              detours: ({ context }) => (context.detours ?? 0) + 1,
              lastError: ({ event }) => toEffectError(event.error),
            }),
          },
          {
            target: 'ExchangeFailed',
            actions: { type: 'exchangeFailed', params: { what: 'The code exchange failed' } },
          },
        ],
      },
      after: {
        codeDeadline: {
          target: 'CodeExpired',
          actions: fail('code_expired', 'The authorization code expired before it could be exchanged.'),
        },
      },
      on: {
        CANCEL: { target: 'Cancelled', actions: fail('cancelled', 'Cancelled by an admin.') },
      },
    },
    Tokened: {
      description: 'Tokens are stored; the browser is being sent on (close-window or post-install page). '
        + 'A webhook-started install has no browser and moves on at once.',
      after: { browserReturnTimeout: toSetup },
      on: { BROWSER_SENT_ON: toSetup },
    },
    SetupIncomplete: {
      description: "Installed; waiting for the app's own setup to finish, then the bi-event.",
      initial: 'waiting',
      states: {
        waiting: { on: { FINISH: 'finishing' } },
        finishing: {
          // A backstop: whatever becomes of the finishSetup job (a run lost to a database blip),
          // the install goes back to waiting, where the app or an admin can ask to finish again.
          after: {
            finishDeadline: {
              target: 'waiting',
              actions: assign({
                lastError: { code: 'FINISH_TIMED_OUT', message: 'Finishing did not complete within an hour; ask to finish again.' },
              }),
            },
          },
          invoke: {
            id: 'finishSetup',
            src: 'finishSetup',
            input: ({ context }) => ({ installationId: context.id, instanceId: context.instanceId! }),
            onDone: { target: '#installation.Finished', actions: assign({ lastError: null }) },
            onError: [
              {
                guard: 'refreshRejected',
                target: '#installation.ReinstallRequired',
                actions: assign({
                  failure: ({ event }) => ({
                    reason: 'reinstall_required' as const,
                    detail: `Wix rejected this installation's tokens: ${describeError(event.error)}. The site owner must reinstall the app.`,
                  }),
                }),
              },
              // The app stays installed: record why, and let the app ask to finish again.
              { target: 'waiting', actions: assign({ lastError: ({ event }) => toEffectError(event.error) }) },
            ],
          },
        },
      },
      on: {
        REFRESH_REJECTED: { target: 'ReinstallRequired', actions: 'refreshRejected' },
      },
    },
    Finished: {
      description: 'APP_FINISHED_CONFIGURATION was accepted by Wix.',
      on: {
        REFRESH_REJECTED: { target: 'ReinstallRequired', actions: 'refreshRejected' },
      },
    },
    ExchangeFailed: { type: 'final', description: 'The code exchange was refused or Wix stayed unavailable.' },
    CodeExpired: { type: 'final', description: 'The code deadline passed before the exchange succeeded.' },
    ConsentAbandoned: { type: 'final', description: 'Declined or abandoned at the Wix consent screen.' },
    Cancelled: { type: 'final', description: 'Ended by an admin while in flight.' },
    Uninstalled: { type: 'final', description: 'The app was removed from the site.' },
    ReinstallRequired: { type: 'final', description: 'Wix rejected the refresh token and client credentials, or a cloned site must be reinstalled (CLONED_SITE_POLICY).' },
    Superseded: { type: 'final', description: 'A webhook-started install that a browser flow Wix confirmed for the same instance carries on.' },
  },
})

export type InstallationMachine = typeof installationMachine
