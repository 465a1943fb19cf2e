import type { InstallationContext } from '../../machines/installation.ts';
import type { Config } from '../config.ts';
import { type Engine, type Workflow } from '../engine/index.ts';
import type { TokenVault } from './token-vault.ts';
/** Wix codes are valid 10 minutes: past that, an exchange can only fail. */
export declare const CODE_TTL_MS: number;
/** How long a browser sent on may take to come back before setup counts as begun anyway. */
export declare const BROWSER_RETURN_TIMEOUT_MS: number;
export type Destination = {
    kind: 'redirect';
    url: string;
} | {
    kind: 'pending';
} | {
    kind: 'failed';
    failure: InstallationContext['failure'];
};
/**
 * The browser-facing steps of the Wix flow, free of HTTP: routes parse and answer, this decides.
 * Every check that fails throws a named 4xx before the installation or Wix is touched.
 */
export declare function createInstallFlow(deps: {
    engine: Engine;
    config: Config;
    vault: TokenVault;
}): {
    begin: (origin: "app-url" | "platform", wixToken?: string) => Promise<{
        installation: Workflow;
        state: string;
        installerUrl: string;
    }>;
    callback: (q: {
        code: string;
        state: string;
        instanceId: string;
    }, cookieState: string | undefined) => Promise<Workflow>;
    decline: (q: {
        error: string;
        description?: string;
        state: string;
    }, cookieState: string | undefined) => Promise<Workflow>;
    destination: (w: Workflow) => Promise<Destination>;
    settled: (id: string, timeoutMs: number) => Promise<Workflow | undefined>;
};
export type InstallFlow = ReturnType<typeof createInstallFlow>;
