/** Wix access tokens live 5 minutes and the answer carries no `expires_in`. */
export const ACCESS_TOKEN_TTL_MS = 5 * 60_000;
export class TokenVaultError extends Error {
    code;
    retryable;
    constructor(code, message, retryable = false) {
        super(message);
        this.code = code;
        this.retryable = retryable;
    }
    toJSON() {
        return { code: this.code, message: this.message, retryable: this.retryable };
    }
}
/**
 * Each Wix instance's tokens, encrypted at rest. A new flow for a known instance replaces them.
 * Minting is single-flight per instance in this process: concurrent callers share one refresh.
 */
export function createTokenVault(opts) {
    const { sql, cipher, wix, now } = opts;
    const minting = new Map();
    async function save(instanceId, workflowId, tokens, obtainedAt = now()) {
        const expiresAt = new Date(obtainedAt.getTime() + ACCESS_TOKEN_TTL_MS);
        await sql `
      insert into instance_tokens (instance_id, workflow_id, refresh_token, access_token, access_token_expires_at, created_at, updated_at)
      values (${instanceId}, ${workflowId}, ${cipher.encrypt(tokens.refreshToken)}, ${cipher.encrypt(tokens.accessToken)},
              ${expiresAt}, ${obtainedAt}, ${obtainedAt})
      on conflict (instance_id) do update set
        workflow_id = excluded.workflow_id, refresh_token = excluded.refresh_token,
        access_token = excluded.access_token, access_token_expires_at = excluded.access_token_expires_at,
        updated_at = excluded.updated_at`;
    }
    /** Whether this installation's code exchange already stored tokens (a re-run after a crash). */
    async function exchangedBy(workflowId) {
        const [row] = await sql `select 1 from instance_tokens where workflow_id = ${workflowId}`;
        return Boolean(row);
    }
    async function mint(instanceId, signal) {
        const [row] = await sql `
      select refresh_token from instance_tokens where instance_id = ${instanceId}`;
        if (!row)
            throw new TokenVaultError('NO_TOKENS', 'No tokens are stored for this instance');
        const obtainedAt = now();
        let tokens;
        try {
            tokens = await wix.refreshAccessToken(cipher.decrypt(row.refresh_token), { signal });
        }
        catch (err) {
            const e = err;
            if (e.code === 'WIX_REJECTED' && (e.status === 400 || e.status === 401 || e.status === 403)) {
                throw new TokenVaultError('REFRESH_TOKEN_REJECTED', `Wix rejected the refresh token (${e.status}); the app must be reinstalled`);
            }
            throw err;
        }
        const expiresAt = new Date(obtainedAt.getTime() + ACCESS_TOKEN_TTL_MS);
        await sql `
      update instance_tokens set access_token = ${cipher.encrypt(tokens.accessToken)},
        refresh_token = ${cipher.encrypt(tokens.refreshToken)}, access_token_expires_at = ${expiresAt},
        updated_at = ${obtainedAt}
      where instance_id = ${instanceId}`;
        return { accessToken: tokens.accessToken, expiresAt };
    }
    async function cached(instanceId, minRemainingMs) {
        const [row] = await sql `
      select access_token, access_token_expires_at from instance_tokens where instance_id = ${instanceId}`;
        if (!row)
            throw new TokenVaultError('NO_TOKENS', 'No tokens are stored for this instance');
        const left = (row.access_token_expires_at?.getTime() ?? 0) - now().getTime();
        if (row.access_token && left >= minRemainingMs) {
            return { accessToken: cipher.decrypt(row.access_token), expiresAt: row.access_token_expires_at };
        }
    }
    /**
     * An access token with at least `minRemainingMs` left: the stored one while it is comfortably
     * alive, else a fresh one minted from the refresh token. `fresh` always mints. A caller that
     * read a stale token while a mint was finishing looks at the store again before minting, so
     * concurrent callers share one call to Wix.
     */
    async function accessToken(instanceId, o = {}) {
        const minRemainingMs = o.minRemainingMs ?? 60_000;
        if (!o.fresh) {
            const hit = await cached(instanceId, minRemainingMs);
            if (hit)
                return hit;
        }
        const pending = minting.get(instanceId);
        if (pending)
            return pending;
        const p = (async () => (!o.fresh && (await cached(instanceId, minRemainingMs))) || mint(instanceId, o.signal))()
            .finally(() => minting.delete(instanceId));
        minting.set(instanceId, p);
        return p;
    }
    return { save, exchangedBy, accessToken };
}
