import type { Fragment } from 'postgres'
import { createdAtOf, inStates } from '../../engine/index.ts'
import { ACCESS_TOKEN_TTL_MS, type NewTokens, type TokenVaultOptions } from './tokens.ts'

/**
 * Each instance's tokens (`wix_install.instance_tokens`), filed by the installation that obtained
 * them, and fenced: only while that installation still awaits them, and never over a newer one's.
 */
export function createInstanceTokens(opts: Pick<TokenVaultOptions, 'sql' | 'cipher' | 'now'>) {
  const { sql, cipher, now } = opts

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
   * Stores the tokens installation `workflowId` holds (`hold`: an earlier run of its exchange could
   * not file them) as `instanceId`'s, as `save` does, copied within the database: they are
   * already encrypted, and nothing decrypts or encrypts them again. Their access token expires
   * 5 minutes after they were obtained.
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
    // way nothing is left to hold, and it goes in the same statement. Kept when an exchange files
    // the tokens it just got, though it held none: a run of the same installation that lost its
    // job may have held tokens after its successor looked for them (a code's, before the detour
    // that brought this one). Finding no row, the delete writes nothing: one primary-key probe.
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

  return { save, fileHeld, exchangedBy, holderOf, erase }
}
