/**
 * One Wix app installation, from the App URL hit to the APP_FINISHED_CONFIGURATION bi-event.
 * Pure: no I/O here. The effects (`exchangeCode`, `finishSetup`) are declared by name and bound
 * with `machine.provide({ actors })`; delays are persisted as timer rows by the engine.
 */
/** Bump on any change that makes stored snapshots mean something else. */
export declare const INSTALLATION_MACHINE_VERSION = 1;
export declare const FAILURE_STATES: readonly ["ExchangeFailed", "CodeExpired", "ConsentAbandoned", "Cancelled", "Uninstalled", "ReinstallRequired"];
export type FailureReason = 'exchange_refused' | 'exchange_unavailable' | 'code_expired' | 'consent_declined' | 'consent_abandoned' | 'cancelled' | 'uninstalled' | 'reinstall_required';
export interface Failure {
    reason: FailureReason;
    detail: string;
}
/** A failed effect as the engine reports it: safe to store, never a secret. */
export interface EffectError {
    code: string;
    message: string;
    retryable?: boolean;
    status?: number;
    wixRequestId?: string;
    attempts?: number;
}
export interface InstallationInput {
    id: string;
    origin: 'app-url' | 'platform';
    /** sha256 (hex) of the OAuth `state` sent to Wix: finds this installation at the callback. */
    stateHash: string;
    closeWindow: boolean;
    autoFinish: boolean;
    consentTimeoutMs: number;
    codeTtlMs: number;
    browserReturnTimeoutMs: number;
}
export interface InstallationContext extends Omit<InstallationInput, 'id'> {
    id: string;
    instanceId: string | null;
    failure: Failure | null;
    /** The last effect failure that did not end the installation (a finish to try again). */
    lastError: EffectError | null;
}
export type InstallationEvent = {
    type: 'INSTALLER_REDIRECTED';
}
/** `stateHash`: the hash of the OAuth state the browser came back with. */
 | {
    type: 'CALLBACK';
    code: string;
    instanceId: string;
    stateHash: string;
} | {
    type: 'CONSENT_DECLINED';
    error: string;
    description?: string;
    stateHash: string;
} | {
    type: 'BROWSER_SENT_ON';
    destination: 'close-window' | 'post-install';
} | {
    type: 'FINISH';
} | {
    type: 'CANCEL';
    detail?: string;
} | {
    type: 'UNINSTALLED';
} | {
    type: 'REFRESH_REJECTED';
    detail: string;
};
export interface ExchangeInput {
    installationId: string;
    instanceId: string;
    code: string;
    /** Which run of the exchange this is, added by the engine (1: the first). */
    attempt?: number;
}
export interface FinishInput {
    installationId: string;
    instanceId: string;
}
export declare const installationMachine: import("xstate").StateMachine<InstallationContext, {
    type: "INSTALLER_REDIRECTED";
} | {
    type: "CALLBACK";
    code: string;
    instanceId: string;
    stateHash: string;
} | {
    type: "CONSENT_DECLINED";
    error: string;
    description?: string;
    stateHash: string;
} | {
    type: "BROWSER_SENT_ON";
    destination: "close-window" | "post-install";
} | {
    type: "FINISH";
} | {
    type: "CANCEL";
    detail?: string;
} | {
    type: "UNINSTALLED";
} | {
    type: "REFRESH_REJECTED";
    detail: string;
}, {
    [x: string]: import("xstate").ActorRefFromLogic<import("xstate").PromiseActorLogic<{
        exchangedAt: string;
    }, ExchangeInput, import("xstate").EventObject> | import("xstate").PromiseActorLogic<{
        finishedAt: string;
    }, FinishInput, import("xstate").EventObject>> | undefined;
}, {
    src: "exchangeCode";
    logic: import("xstate").PromiseActorLogic<{
        exchangedAt: string;
    }, ExchangeInput, import("xstate").EventObject>;
    id: string | undefined;
} | {
    src: "finishSetup";
    logic: import("xstate").PromiseActorLogic<{
        finishedAt: string;
    }, FinishInput, import("xstate").EventObject>;
    id: string | undefined;
}, {
    type: "fail";
    params: Failure;
} | {
    type: "refreshRejected";
    params: import("xstate").NonReducibleUnknown;
}, {
    type: "autoFinish";
    params: unknown;
} | {
    type: "refreshRejected";
    params: unknown;
} | {
    type: "startedFromPlatform";
    params: unknown;
} | {
    type: "live";
    params: unknown;
} | {
    type: "stateMatches";
    params: unknown;
} | {
    type: "callbackComplete";
    params: unknown;
} | {
    type: "errorIsFinal";
    params: unknown;
}, "consentTimeout" | "codeDeadline" | "browserReturnTimeout", "ExchangeFailed" | "CodeExpired" | "ConsentAbandoned" | "Cancelled" | "Uninstalled" | "ReinstallRequired" | "AppUrlHit" | "Authorizing" | "CodeReceived" | "Tokened" | "Finished" | {
    SetupIncomplete: "waiting" | "finishing";
}, string, InstallationInput, import("xstate").NonReducibleUnknown, import("xstate").EventObject, import("xstate").MetaObject, {
    id: "installation";
    states: {
        readonly AppUrlHit: {};
        readonly Authorizing: {};
        readonly CodeReceived: {};
        readonly Tokened: {};
        readonly SetupIncomplete: {
            states: {
                readonly waiting: {};
                readonly finishing: {};
            };
        };
        readonly Finished: {};
        readonly ExchangeFailed: {};
        readonly CodeExpired: {};
        readonly ConsentAbandoned: {};
        readonly Cancelled: {};
        readonly Uninstalled: {};
        readonly ReinstallRequired: {};
    };
}, import("xstate").MetaObject>;
export type InstallationMachine = typeof installationMachine;
