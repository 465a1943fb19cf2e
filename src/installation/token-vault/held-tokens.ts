import { inStates } from '../../engine/index.ts'
import type { ObtainedTokens, TokenVaultOptions } from './tokens.ts'

/**
 * An exchange's tokens, held by its installation (`wix_install.exchanged_tokens`) when the run
 * that got them could not file them under their instance, until a later run files them
 * (`fileHeld` in instance-tokens.ts). Encrypted like the filed ones. A run that files at once
 * writes none of this.
 */
export function createHeldTokens(opts: Pick<TokenVaultOptions, 'sql' | 'cipher'>) {
  const { sql, cipher } = opts

  /**
   * Keeps an exchange's tokens by its installation, while it is in one of the `awaiting` states:
   * they exist nowhere else, and the code that gave them is spent. An installation that moved on
   * (cancelled, expired, sent back for a new code) has no run left to file them. With their
   * `obtainedAt`, so the run that files them knows how old their access token is.
   */
  async function hold(workflowId: string, tokens: ObtainedTokens, awaiting: string[]) {
    await sql`
      insert into wix_install.exchanged_tokens (workflow_id, refresh_token, access_token, obtained_at)
      select ${workflowId}, ${cipher.encrypt(tokens.refreshToken)}, ${cipher.encrypt(tokens.accessToken)}, ${tokens.obtainedAt}
      where ${inStates(sql, workflowId, awaiting)}
      on conflict (workflow_id) do nothing`
  }

  /** Forgets tokens installations held and never filed: they ended (expired, cancelled, uninstalled). */
  async function dropHeld(workflowIds: string[]) {
    if (workflowIds.length) await sql`delete from wix_install.exchanged_tokens where workflow_id = any(${workflowIds}::uuid[])`
  }

  /** Tokens an earlier run of this installation's exchange held and did not file. */
  async function held(workflowId: string): Promise<ObtainedTokens | undefined> {
    const [row] = await sql<{ refresh_token: string; access_token: string; obtained_at: Date }[]>`
      select refresh_token, access_token, obtained_at from wix_install.exchanged_tokens where workflow_id = ${workflowId}`
    return row && { refreshToken: cipher.decrypt(row.refresh_token), accessToken: cipher.decrypt(row.access_token), obtainedAt: row.obtained_at }
  }

  return { hold, held, dropHeld }
}
