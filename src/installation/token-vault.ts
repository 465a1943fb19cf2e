import type { Fragment, Sql } from 'postgres'
import type { TokenCipher } from '../crypto/token-cipher.ts'
import { createdAtOf, inStates } from '../engine/index.ts'
import { WixApiError } from '../wix/client.ts'

/** Wix access tokens from `/oauth/access` live 5 minutes and the answer carries no `expires_in`. */
export const ACCESS_TOKEN_TTL_MS = 5 * 60_000
/** A client-credentials token is used until this long before the `expires_in` Wix stated. */
const EXPIRY_MARGIN_MS = 60_000

export interface WixTokens {
  accessToken: string
  refreshToken: string
}

export interface TokenMinter {
  refreshAccessToken(refreshToken: string, o?: { signal?: AbortSignal }): Promise<WixTokens>
  clientCredentials(instanceId: string, o?: { signal?: AbortSignal }): Promise<{ accessToken: string; expiresInMs: number }>
  /** What Wix says of a token; needs no app secret. Without it, refusals are judged by other instances alone. */
  tokenInfo?(token: string, o?: { signal?: AbortSignal }): Promise<{ active: boolean }>
}

/**
 * Whose fault a refusal was, from evidence: `instance` (Wix says the instance's tokens are gone,
 * or grants another instance what it refused this one), `app` (other instances are refused alike:
 * the app's id or secret), or `unknown` (nothing told either way).
 */
export type RefusalVerdict = 'instance' | 'app' | 'unknown'

export class TokenVaultError extends Error {
  constructor(
    readonly code: 'NO_TOKENS' | 'REFRESH_TOKEN_REJECTED' | 'TOKENS_SUPERSEDED' | 'REFUSAL_UNEXPLAINED',
    message: string,
    readonly retryable = false,
  ) {
    super(message)
  }
  toJSON() {
    return { code: this.code, message: this.message, retryable: this.retryable }
  }
}

export interface AccessToken {
  accessToken: string
  expiresAt: Date
}

/** Tokens to store: a refresh token where the legacy flow gave one, else none (client credentials). */
export interface NewTokens {
  accessToken: string
  refreshToken: string | null
  expiresAt: Date
}

/**
 * Wix refused a grant (any 4xx but 429). Its status and body do not say whether the token or the
 * app's own secret was refused: Wix documents neither shape. `explainRefusal` finds out.
 */
const refused = (err: unknown) => {
  const code = (err as { code?: string }).code
  return code === 'WIX_REJECTED' || code === 'WIX_CLIENT_REJECTED'
}
/** How many other instances a refusal is checked against. */
const PROBES = 2

/**
 * Each Wix instance's tokens, encrypted at rest, stored by the installation that obtained them.
 * A newer installation of an instance replaces them; an older one never overwrites a newer one's.
 * Minting is single-flight per instance in this process: concurrent callers share one call to Wix.
 */
export function createTokenVault(opts: {
  sql: Sql; cipher: TokenCipher; wix: TokenMinter; now: () => Date; log?: { warn(o: object, m: string): void }
  /** Told when refusals turn out to be of the app's own credentials (for the credentials' health). */
  onAppRefused?: (status: number | undefined) => void
}) {
  const { sql, cipher, wix, now } = opts
  const minting = new Map<string, Promise<AccessToken>>()

  /**
   * Stores `tokens` as `instanceId`'s, obtained by installation `workflowId` while it is in one of
   * the `awaiting` states. False when they were not stored: the installation has moved on (a
   * cancel, a deadline, an uninstall), or a newer installation of the instance holds its tokens.
   * A refresh token outranks age: an OAuth exchange replaces tokens a webhook install minted by
   * client credentials, and client credentials never replace a refresh token (a legacy app gets
   * AppInstalled too, while its own flow is still at the consent screen).
   * `for share` holds the installation's row until this commits: an uninstall that commits first
   * is seen (nothing is stored), one that commits after waits, then erases what was stored.
   */
  async function save(instanceId: string, workflowId: string, tokens: NewTokens, awaiting: string[]): Promise<boolean> {
    const at = now()
    const refresh = tokens.refreshToken === null ? null : cipher.encrypt(tokens.refreshToken)
    return file(workflowId, sql`
      select ${instanceId}, ${workflowId}, ${refresh}, ${cipher.encrypt(tokens.accessToken)}, ${tokens.expiresAt}, ${at}, ${at}
      where ${inStates(sql, workflowId, awaiting)}`)
  }

  /**
   * Stores the tokens installation `workflowId` holds (`hold`) as `instanceId`'s, as `save` does,
   * copied within the database: they are already encrypted, and nothing decrypts or encrypts
   * them again. Their access token expires 5 minutes after they were obtained.
   */
  async function fileHeld(instanceId: string, workflowId: string, awaiting: string[]): Promise<boolean> {
    const at = now()
    return file(workflowId, sql`
      select ${instanceId}, workflow_id, refresh_token, access_token,
             obtained_at + ${ACCESS_TOKEN_TTL_MS}::int * interval '1 millisecond', ${at}, ${at}
      from wix_install.exchanged_tokens
      where workflow_id = ${workflowId} and ${inStates(sql, workflowId, awaiting)}`)
  }

  /** Inserts the row `source` selects (see `save`), and drops what the installation held. */
  async function file(workflowId: string, source: Fragment): Promise<boolean> {
    // Filed, or never to be (the installation moved on, or a newer one holds the instance): either
    // way nothing is left to hold, and it goes in the same statement.
    const rows = await sql`
      with saved as (
        insert into wix_install.instance_tokens (instance_id, workflow_id, refresh_token, access_token, access_token_expires_at, created_at, updated_at)
        ${source}
        on conflict (instance_id) do update set
          workflow_id = excluded.workflow_id, refresh_token = excluded.refresh_token,
          access_token = excluded.access_token, access_token_expires_at = excluded.access_token_expires_at,
          updated_at = excluded.updated_at
        where instance_tokens.workflow_id = excluded.workflow_id
           or (instance_tokens.refresh_token is null and excluded.refresh_token is not null)
           or ((instance_tokens.refresh_token is null or excluded.refresh_token is not null)
               and ${createdAtOf(sql, 'instance_tokens.workflow_id')} <= ${createdAtOf(sql, 'excluded.workflow_id')})
        returning instance_id
      ), dropped as (
        delete from wix_install.exchanged_tokens where workflow_id = ${workflowId}
      )
      select instance_id from saved`
    return rows.length === 1
  }

  /**
   * Keeps an exchange's tokens by its installation until `save` files them under their instance:
   * between Wix's answer and the lookup of whose they are, they exist nowhere else.
   */
  async function hold(workflowId: string, tokens: WixTokens) {
    await sql`
      insert into wix_install.exchanged_tokens (workflow_id, refresh_token, access_token, obtained_at)
      values (${workflowId}, ${cipher.encrypt(tokens.refreshToken)}, ${cipher.encrypt(tokens.accessToken)}, ${now()})
      on conflict (workflow_id) do nothing`
  }

  /** Forgets tokens installations held and never filed: they ended (expired, cancelled, uninstalled). */
  async function dropHeld(workflowIds: string[]) {
    if (workflowIds.length) await sql`delete from wix_install.exchanged_tokens where workflow_id = any(${workflowIds}::uuid[])`
  }

  /** Tokens an earlier run of this installation's exchange held and did not file. */
  async function held(workflowId: string): Promise<(WixTokens & { obtainedAt: Date }) | undefined> {
    const [row] = await sql<{ refresh_token: string; access_token: string; obtained_at: Date }[]>`
      select refresh_token, access_token, obtained_at from wix_install.exchanged_tokens where workflow_id = ${workflowId}`
    return row && { refreshToken: cipher.decrypt(row.refresh_token), accessToken: cipher.decrypt(row.access_token), obtainedAt: row.obtained_at }
  }

  /** The instance whose tokens this installation's exchange stored, if it did (a re-run after a crash). */
  async function exchangedBy(workflowId: string): Promise<string | undefined> {
    const [row] = await sql<{ instance_id: string }[]>`select instance_id from wix_install.instance_tokens where workflow_id = ${workflowId}`
    return row?.instance_id
  }

  /**
   * Forgets an instance's tokens (the app was removed from the site): rows gone, not flagged.
   * `except`: unless one of these installations (begun after the removal) holds them.
   */
  async function erase(instanceId: string, o: { except?: string[] } = {}): Promise<number> {
    const rows = await sql`
      delete from wix_install.instance_tokens
      where instance_id = ${instanceId} and workflow_id <> all(${o.except ?? []}::uuid[])
      returning instance_id`
    return rows.length
  }

  /** Which installation holds an instance's tokens, and whether they include a refresh token. */
  async function holderOf(instanceId: string): Promise<{ workflowId: string; refreshToken: boolean } | undefined> {
    const [row] = await sql<{ workflow_id: string; refresh: boolean }[]>`
      select workflow_id, refresh_token is not null as refresh from wix_install.instance_tokens where instance_id = ${instanceId}`
    return row && { workflowId: row.workflow_id, refreshToken: row.refresh }
  }

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
      throw await refusalError(instanceId, refreshToken, err, signal)
    }
    const expiresAt = new Date(obtainedAt.getTime() + Math.max(0, minted.expiresInMs - EXPIRY_MARGIN_MS))
    await store(instanceId, row.workflow_id, minted.accessToken, expiresAt, refreshRejected ? null : row.refresh_token)
    return { accessToken: minted.accessToken, expiresAt }
  }

  /**
   * Why Wix refused this instance's grants, from evidence rather than status codes (a wrong app
   * secret and a removed app may both be a 400, 401 or 403). Token-info needs no secret: a refresh
   * token it calls inactive is gone. Then client credentials for the instances used most recently:
   * granted to another, the refusal was this instance's; refused to them alike, it was the app's.
   */
  async function explainRefusal(
    instanceId: string, refreshToken: string | null, signal?: AbortSignal,
  ): Promise<RefusalVerdict> {
    let alive = false
    if (refreshToken !== null && wix.tokenInfo) {
      const info = await wix.tokenInfo(refreshToken, { signal }).catch(() => undefined)
      if (info?.active === false) return 'instance'
      alive = info?.active === true
    }
    const others = await sql<{ instance_id: string }[]>`
      select instance_id from wix_install.instance_tokens where instance_id <> ${instanceId}
      order by updated_at desc limit ${PROBES}`
    let refusedAlike = false
    for (const { instance_id } of others) {
      try {
        await wix.clientCredentials(instance_id, { signal })
        // Wix grants the app elsewhere; a refresh token it still calls active is no proof of removal.
        return alive ? 'unknown' : 'instance'
      } catch (err) {
        if (refused(err)) refusedAlike = true
      }
    }
    return refusedAlike ? 'app' : 'unknown'
  }

  /** The error a refused mint ends in: only an instance's own refusal asks for a reinstall. */
  async function refusalError(instanceId: string, refreshToken: string | null, err: unknown, signal?: AbortSignal) {
    const status = (err as { status?: number }).status
    const verdict = await explainRefusal(instanceId, refreshToken, signal)
    opts.log?.warn({ instanceId, status, verdict }, 'Wix refused every grant for this instance')
    if (verdict === 'instance') {
      return new TokenVaultError('REFRESH_TOKEN_REJECTED', `Wix refused this instance's tokens (${status}) while it still ` +
        'grants the app for others (or says the tokens are gone); the app must be reinstalled')
    }
    if (verdict === 'app') {
      opts.onAppRefused?.(status)
      return new WixApiError({
        code: 'WIX_CLIENT_REJECTED', endpoint: 'oauth2/token', status, retryable: true,
        message: `Wix refused the app's client credentials for every instance alike (${status}): check WIX_APP_ID and ` +
          'WIX_APP_SECRET; no installation was marked, and each works again once they are right',
      })
    }
    return new TokenVaultError('REFUSAL_UNEXPLAINED', `Wix refused a token for this instance (${status}), and nothing ` +
      'showed whether the instance or the app\'s credentials are at fault: no installation was marked; try again', true)
  }

  /** Keeps a minted token, unless the row changed hands meanwhile (a reinstall, an uninstall). */
  const store = (instanceId: string, workflowId: string, access: string, expiresAt: Date, refresh: string | null) => sql`
    update wix_install.instance_tokens set access_token = ${cipher.encrypt(access)}, refresh_token = ${refresh},
      access_token_expires_at = ${expiresAt}, updated_at = ${now()}
    where instance_id = ${instanceId} and workflow_id = ${workflowId}`

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

  return { save, fileHeld, hold, held, dropHeld, exchangedBy, holderOf, erase, accessToken, accessTokenOf, explainRefusal }
}

export type TokenVault = ReturnType<typeof createTokenVault>
