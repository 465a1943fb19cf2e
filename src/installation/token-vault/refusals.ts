import { WixApiError } from '../../wix/client.ts'
import { TokenVaultError, type RefusalVerdict, type TokenVaultOptions } from './tokens.ts'

/**
 * Wix refused a grant (any 4xx but 429). Its status and body do not say whether the token or the
 * app's own secret was refused: Wix documents neither shape. `explainRefusal` finds out.
 */
export const refused = (err: unknown) => {
  const code = (err as { code?: string }).code
  return code === 'WIX_REJECTED' || code === 'WIX_CLIENT_REJECTED'
}
/** How many other instances a refusal is checked against. */
const PROBES = 2

/** Judges Wix's refusals of an instance's grants, and turns a verdict into the error a mint ends in. */
export function createRefusalJudge(opts: Pick<TokenVaultOptions, 'sql' | 'wix' | 'log' | 'onAppRefused'>) {
  const { sql, wix } = opts

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

  return { explainRefusal, refusalError }
}
