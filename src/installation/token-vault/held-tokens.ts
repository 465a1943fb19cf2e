import type { TokenVaultOptions, WixTokens } from './tokens.ts'

/**
 * An exchange's tokens, held by its installation (`wix_install.exchanged_tokens`) until they are
 * filed under their instance (`fileHeld` in instance-tokens.ts), encrypted like the filed ones.
 */
export function createHeldTokens(opts: Pick<TokenVaultOptions, 'sql' | 'cipher' | 'now'>) {
  const { sql, cipher, now } = opts

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

  return { hold, held, dropHeld }
}
