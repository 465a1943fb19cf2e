import { refused } from './refusals.ts'
import { ACCESS_TOKEN_TTL_MS, TokenVaultError, type AccessToken, type TokenVaultOptions } from './tokens.ts'

/** A client-credentials token is used until this long before the `expires_in` Wix stated. */
const EXPIRY_MARGIN_MS = 60_000

/** Mints an instance's access tokens from Wix; a refusal ends in the error `refusalError` makes of it. */
export function createMinter(opts: Pick<TokenVaultOptions, 'sql' | 'cipher' | 'wix' | 'now' | 'log'> & {
  refusalError: (instanceId: string, refreshToken: string | null, err: unknown, signal?: AbortSignal) => Promise<Error>
}) {
  const { sql, cipher, wix, now } = opts

  /**
   * A new access token: from the refresh token where the legacy flow left one, else by client
   * credentials. A refresh token Wix refuses gets one client-credentials attempt (Wix's own
   * fallback) and is dropped when that works. When both are refused, the refusal is judged from
   * evidence (`explainRefusal`): only one of this instance needs a reinstall.
   */
  async function mint(instanceId: string, o: { signal?: AbortSignal; keep: boolean }): Promise<AccessToken> {
    const { signal } = o
    const [row] = await sql<{ refresh_token: string | null; workflow_id: string }[]>`
      select refresh_token, workflow_id from wix_install.instance_tokens where instance_id = ${instanceId}`
    if (!row) throw new TokenVaultError('NO_TOKENS', 'No tokens are stored for this instance')
    const obtainedAt = now()
    const refreshToken = row.refresh_token === null ? null : cipher.decrypt(row.refresh_token)
    let refreshRejected = false
    if (refreshToken !== null) {
      try {
        const tokens = await wix.refreshAccessToken(refreshToken, { signal })
        const expiresAt = new Date(obtainedAt.getTime() + ACCESS_TOKEN_TTL_MS)
        // Whatever refresh token comes back is the one kept (Wix's own do not rotate, but docs/design.md
        // asks to keep what it answers). A token minted for one call alone is not kept otherwise.
        if (o.keep || tokens.refreshToken !== refreshToken) {
          await store(instanceId, row.workflow_id, tokens.accessToken, expiresAt, cipher.encrypt(tokens.refreshToken))
        }
        return { accessToken: tokens.accessToken, expiresAt }
      } catch (err) {
        if (!refused(err)) throw err
        refreshRejected = true
        opts.log?.warn({ instanceId, status: (err as { status?: number }).status }, 'Wix rejected the refresh token; trying client credentials once')
      }
    }
    let minted: { accessToken: string; expiresInMs: number }
    try {
      minted = await wix.clientCredentials(instanceId, { signal })
    } catch (err) {
      if (!refused(err)) throw err
      throw await opts.refusalError(instanceId, refreshToken, err, signal)
    }
    const expiresAt = new Date(obtainedAt.getTime() + Math.max(0, minted.expiresInMs - EXPIRY_MARGIN_MS))
    await store(instanceId, row.workflow_id, minted.accessToken, expiresAt, refreshRejected ? null : row.refresh_token)
    return { accessToken: minted.accessToken, expiresAt }
  }

  /** Keeps a minted token, unless the row changed hands meanwhile (a reinstall, an uninstall). */
  const store = (instanceId: string, workflowId: string, access: string, expiresAt: Date, refresh: string | null) => sql`
    update wix_install.instance_tokens set access_token = ${cipher.encrypt(access)}, refresh_token = ${refresh},
      access_token_expires_at = ${expiresAt}, updated_at = ${now()}
    where instance_id = ${instanceId} and workflow_id = ${workflowId}`

  return { mint }
}
