import type { SandboxSecrets } from '../config.ts';
/**
 * Sandbox mode needs no configuration, yet its tokens must still decrypt after a restart: the
 * secrets are made once and kept beside the embedded database, readable by this user only.
 */
export declare function loadSandboxSecrets(dataDir: string): SandboxSecrets;
