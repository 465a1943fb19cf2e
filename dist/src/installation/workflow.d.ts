import type { TokenVault, WixTokens } from './token-vault.ts';
export interface InstallationWix {
    exchangeCode(code: string, o?: {
        signal?: AbortSignal;
    }): Promise<WixTokens>;
    sendBiEvent(accessToken: string, o?: {
        signal?: AbortSignal;
    }): Promise<void>;
}
/** The installation machine with its effects bound to Wix and the token vault. */
export declare function installationWorkflow(deps: {
    wix: InstallationWix;
    vault: TokenVault;
    now: () => Date;
}): import("../engine/definition.ts").WorkflowDefinition;
