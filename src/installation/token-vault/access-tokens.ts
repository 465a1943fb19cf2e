import { TokenVaultError, type AccessToken, type TokenVaultOptions } from './tokens.ts'

/**
 * An instance's access token as its callers ask for it: the stored one while it is alive, else
 * one `mint` makes. Minting is single-flight per instance in this process: concurrent callers
 * share one call to Wix.
 */
export function createAccessTokens(opts: Pick<TokenVaultOptions, 'sql' | 'cipher' | 'now'> & {
  mint: (instanceId: string, o: { signal?: AbortSignal; keep: boolean }) => Promise<AccessToken>
  exchangedBy: (workflowId: string) => Promise<string | undefined>
}) {
  const { sql, cipher, now, mint, exchangedBy } = opts
  const minting = new Map<string, Promise<AccessToken>>()

  async function cached(instanceId: string, minRemainingMs: number): Promise<AccessToken | undefined> {
    const [row] = await sql<{ access_token: string | null; access_token_expires_at: Date | null }[]>`
      select access_token, access_token_expires_at from wix_install.instance_tokens where instance_id = ${instanceId}`
    if (!row) throw new TokenVaultError('NO_TOKENS', 'No tokens are stored for this instance')
    const left = (row.access_token_expires_at?.getTime() ?? 0) - now().getTime()
    if (row.access_token && left >= minRemainingMs) {
      return { accessToken: cipher.decrypt(row.access_token), expiresAt: row.access_token_expires_at! }
    }
  }

  /**
   * An access token with at least `minRemainingMs` left: the stored one while it is comfortably
   * alive, else a fresh one, stored for the callers after. A caller that read a stale token while
   * a mint was finishing looks at the store again before minting, so concurrent callers share one
   * call. `fresh` always mints (or shares a mint in progress), for one call (the finish's
   * bi-event): such a token is not stored, which saves a write per finish; the stored one stays.
   */
  async function accessToken(instanceId: string, o: { minRemainingMs?: number; fresh?: boolean; signal?: AbortSignal } = {}): Promise<AccessToken> {
    const minRemainingMs = o.minRemainingMs ?? 60_000
    if (!o.fresh) {
      const hit = await cached(instanceId, minRemainingMs)
      if (hit) return hit
    }
    const pending = minting.get(instanceId)
    if (pending) return pending
    // Not shared: a caller joining it would expect its token stored.
    if (o.fresh) return mint(instanceId, { signal: o.signal, keep: false })
    const p = (async () => (await cached(instanceId, minRemainingMs)) || mint(instanceId, { signal: o.signal, keep: true }))()
      .finally(() => minting.delete(instanceId))
    minting.set(instanceId, p)
    return p
  }

  /**
   * The access token installation `workflowId` itself stored, while its tokens are still the
   * instance's; undefined once a newer installation (or an uninstall) took them over.
   */
  async function accessTokenOf(workflowId: string): Promise<AccessToken | undefined> {
    const instanceId = await exchangedBy(workflowId)
    if (!instanceId) return undefined
    const token = await accessToken(instanceId, { minRemainingMs: 30_000 })
    return (await exchangedBy(workflowId)) === instanceId ? token : undefined
  }

  return { accessToken, accessTokenOf }
}
