import type { Sql } from 'postgres';
import type { TokenCipher } from '../crypto/token-cipher.ts';
/** Wix access tokens live 5 minutes and the answer carries no `expires_in`. */
export declare const ACCESS_TOKEN_TTL_MS: number;
export interface WixTokens {
    accessToken: string;
    refreshToken: string;
}
export interface TokenMinter {
    refreshAccessToken(refreshToken: string, o?: {
        signal?: AbortSignal;
    }): Promise<WixTokens>;
}
export declare class TokenVaultError extends Error {
    readonly code: 'NO_TOKENS' | 'REFRESH_TOKEN_REJECTED';
    readonly retryable: boolean;
    constructor(code: 'NO_TOKENS' | 'REFRESH_TOKEN_REJECTED', message: string, retryable?: boolean);
    toJSON(): {
        code: "NO_TOKENS" | "REFRESH_TOKEN_REJECTED";
        message: string;
        retryable: boolean;
    };
}
export interface AccessToken {
    accessToken: string;
    expiresAt: Date;
}
/**
 * Each Wix instance's tokens, encrypted at rest. A new flow for a known instance replaces them.
 * Minting is single-flight per instance in this process: concurrent callers share one refresh.
 */
export declare function createTokenVault(opts: {
    sql: Sql;
    cipher: TokenCipher;
    wix: TokenMinter;
    now: () => Date;
}): {
    save: (instanceId: string, workflowId: string, tokens: WixTokens, obtainedAt?: Date) => Promise<void>;
    exchangedBy: (workflowId: string) => Promise<boolean>;
    accessToken: (instanceId: string, o?: {
        minRemainingMs?: number;
        fresh?: boolean;
        signal?: AbortSignal;
    }) => Promise<AccessToken>;
};
export type TokenVault = ReturnType<typeof createTokenVault>;
