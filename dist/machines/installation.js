import { and, assign, fromPromise, setup } from 'xstate';
/**
 * One Wix app installation, from the App URL hit to the APP_FINISHED_CONFIGURATION bi-event.
 * Pure: no I/O here. The effects (`exchangeCode`, `finishSetup`) are declared by name and bound
 * with `machine.provide({ actors })`; delays are persisted as timer rows by the engine.
 */
/** Bump on any change that makes stored snapshots mean something else. */
export const INSTALLATION_MACHINE_VERSION = 1;
export const FAILURE_STATES = [
    'ExchangeFailed',
    'CodeExpired',
    'ConsentAbandoned',
    'Cancelled',
    'Uninstalled',
    'ReinstallRequired',
];
const unbound = (name) => async () => {
    throw new Error(`effect ${name} is not bound: provide it with machine.provide({ actors })`);
};
const fail = (reason, detail) => ({ type: 'fail', params: { reason, detail } });
const describeError = (error) => {
    const e = error;
    const parts = [e?.message ?? 'unknown error'];
    if (e?.wixRequestId)
        parts.push(`Wix request id ${e.wixRequestId}`);
    if (e?.attempts)
        parts.push(`after ${e.attempts} attempt(s)`);
    return parts.join('; ');
};
const toEffectError = (error) => {
    const e = (error ?? {});
    return {
        code: e.code ?? 'UNKNOWN',
        message: e.message ?? 'unknown error',
        ...(e.status !== undefined && { status: e.status }),
        ...(e.wixRequestId && { wixRequestId: e.wixRequestId }),
        ...(e.attempts !== undefined && { attempts: e.attempts }),
    };
};
// With AUTO_FINISH the bi-event goes out on arrival; a failed finish then waits for the app.
const toSetup = [
    { guard: 'autoFinish', target: 'SetupIncomplete.finishing' },
    { target: 'SetupIncomplete' },
];
export const installationMachine = setup({
    types: {
        input: {},
        context: {},
        events: {},
    },
    actors: {
        exchangeCode: fromPromise(unbound('exchangeCode')),
        finishSetup: fromPromise(unbound('finishSetup')),
    },
    actions: {
        fail: assign((_, failure) => ({ failure })),
        refreshRejected: assign(({ event }) => {
            const said = event.type === 'REFRESH_REJECTED' && typeof event.detail === 'string' ? event.detail.trim() : '';
            return {
                failure: {
                    reason: 'reinstall_required',
                    detail: `Wix rejected the refresh token${said ? `: ${said}` : ''}. The site owner must reinstall the app.`,
                },
            };
        }),
    },
    guards: {
        startedFromPlatform: ({ context }) => context.origin === 'platform',
        live: ({ context }) => context.failure === null,
        /**
         * The browser came back with the state this installation issued. Plain equality is safe on
         * SHA-256 hashes: how long the comparison takes says nothing about the state behind them.
         */
        stateMatches: ({ context, event }) => 'stateHash' in event && event.stateHash === context.stateHash,
        callbackComplete: ({ event }) => event.type === 'CALLBACK' && typeof event.code === 'string' && event.code !== '' &&
            typeof event.instanceId === 'string' && event.instanceId !== '',
        autoFinish: ({ context }) => context.autoFinish,
        errorIsFinal: ({ event }) => event.error?.retryable === false,
        refreshRejected: ({ event }) => event.error?.code === 'REFRESH_TOKEN_REJECTED',
    },
    delays: {
        consentTimeout: ({ context }) => context.consentTimeoutMs,
        codeDeadline: ({ context }) => context.codeTtlMs,
        browserReturnTimeout: ({ context }) => context.browserReturnTimeoutMs,
    },
}).createMachine({
    id: 'installation',
    context: ({ input }) => ({
        ...input,
        instanceId: null,
        failure: null,
        lastError: null,
    }),
    initial: 'AppUrlHit',
    on: {
        UNINSTALLED: {
            // Failure states are final: an uninstall never rewrites why an installation failed.
            guard: 'live',
            target: '.Uninstalled',
            actions: fail('uninstalled', 'The app was uninstalled from the site.'),
        },
    },
    states: {
        AppUrlHit: {
            description: 'Wix opened the App URL; the browser is about to go to the installer.',
            always: { guard: 'startedFromPlatform', target: 'Authorizing' },
            on: {
                INSTALLER_REDIRECTED: 'Authorizing',
                CANCEL: { target: 'Cancelled', actions: fail('cancelled', 'Cancelled by an admin.') },
            },
        },
        Authorizing: {
            description: 'The browser is at the Wix consent screen; waiting for the Redirect URL.',
            after: {
                consentTimeout: {
                    target: 'ConsentAbandoned',
                    actions: fail('consent_abandoned', 'Nobody came back from the Wix consent screen in time.'),
                },
            },
            on: {
                CALLBACK: {
                    guard: and(['stateMatches', 'callbackComplete']),
                    target: 'CodeReceived',
                    actions: assign({ instanceId: ({ event }) => event.instanceId }),
                },
                CONSENT_DECLINED: {
                    guard: 'stateMatches',
                    target: 'ConsentAbandoned',
                    actions: assign({
                        failure: ({ event }) => ({
                            reason: 'consent_declined',
                            detail: `Wix returned "${event.error}" from the consent screen${event.description ? `: ${event.description}` : ''}.`,
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
                    if (event.type !== 'CALLBACK')
                        throw new Error(`CodeReceived entered by ${event.type}`);
                    return { installationId: context.id, instanceId: event.instanceId, code: event.code };
                },
                onDone: 'Tokened',
                onError: {
                    target: 'ExchangeFailed',
                    actions: assign({
                        failure: ({ event }) => ({
                            reason: event.error?.retryable === false
                                ? 'exchange_refused'
                                : 'exchange_unavailable',
                            detail: `The code exchange failed: ${describeError(event.error)}.`,
                        }),
                        lastError: ({ event }) => toEffectError(event.error),
                    }),
                },
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
            description: 'Tokens are stored; the browser is being sent on (close-window or post-install page).',
            after: { browserReturnTimeout: toSetup },
            on: { BROWSER_SENT_ON: toSetup },
        },
        SetupIncomplete: {
            description: "Installed; waiting for the app's own setup to finish, then the bi-event.",
            initial: 'waiting',
            states: {
                waiting: { on: { FINISH: 'finishing' } },
                finishing: {
                    invoke: {
                        id: 'finishSetup',
                        src: 'finishSetup',
                        input: ({ context }) => ({ installationId: context.id, instanceId: context.instanceId }),
                        onDone: { target: '#installation.Finished', actions: assign({ lastError: null }) },
                        onError: [
                            {
                                guard: 'refreshRejected',
                                target: '#installation.ReinstallRequired',
                                actions: assign({
                                    failure: ({ event }) => ({
                                        reason: 'reinstall_required',
                                        detail: `Wix rejected the refresh token: ${describeError(event.error)}. The site owner must reinstall the app.`,
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
        ReinstallRequired: { type: 'final', description: 'Wix rejected the refresh token; only a reinstall helps.' },
    },
});
