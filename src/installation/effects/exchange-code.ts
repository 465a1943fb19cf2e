import { fromPromise } from 'xstate'
import { CODE_SPENT, type ExchangeInput, type ExchangeOutput } from '../../../machines/installation.ts'
import { type EarlierRun, persistently } from '../../engine/index.ts'
import { ACCESS_TOKEN_TTL_MS } from '../token-vault.ts'
import { again, superseded, type EffectDeps } from './deps.ts'

/** A Wix call that failed in a way worth repeating (network, 5xx, 429). */
const isWixBlip = (err: unknown) => (err as { retryable?: boolean }).retryable === true

/** Wix's own answer that it did not do the work (5xx, 429): a run that failed so did not spend the code. */
const WIX_NOT_DONE = ['WIX_UNAVAILABLE', 'WIX_RATE_LIMITED']
/**
 * A run that may have spent the code and kept nothing: it left no record (it died, or lost its
 * lease), its call timed out or was cut, or it failed after Wix's answer (the tokens could not be
 * kept through a database outage). Only runs Wix answered "not done" are ruled out.
 */
const mayHaveSpentCode = (runs: EarlierRun[]) =>
  runs.some((r) => r.outcome === null || !WIX_NOT_DONE.includes(String(r.error?.code)))

/**
 * Wix refused a code that an earlier run of this exchange had sent and kept nothing of: that run
 * spent it, and died (or lost its job, or its answer) before storing the tokens. Not a refusal of the
 * code itself: the machine sends a waiting browser back to Wix for a new one.
 */
class CodeSpentError extends Error {
  readonly code = CODE_SPENT
  readonly retryable = false
  constructor(private readonly refusal: { message: string; status?: number; wixRequestId?: string }) {
    super(`${refusal.message}: code spent by a process that died (an earlier run of this exchange sent it and did not live to store the tokens)`)
  }
  toJSON() {
    const { status, wixRequestId } = this.refusal
    return { code: this.code, message: this.message, retryable: false, status, wixRequestId }
  }
}

/**
 * A refused re-run: tokens a run that lost its job (and lived) kept meanwhile are used; a code
 * an earlier run may have spent is a spent code (CodeSpentError); anything else is as Wix said.
 */
async function refused(deps: EffectDeps, err: unknown, input: ExchangeInput & { idempotencyKey?: string }) {
  const e = err as { code?: string; message?: string; status?: number; wixRequestId?: string }
  const rerun = input.attempt !== undefined && input.attempt > 1
  if (e.code !== 'WIX_REJECTED' || !rerun || !input.idempotencyKey || !deps.earlierRuns) throw err
  const kept = await deps.vault.held(input.installationId)
  if (kept) return kept
  if (!mayHaveSpentCode(await deps.earlierRuns(input.idempotencyKey, input.attempt!))) throw err
  throw new CodeSpentError({ message: e.message ?? 'Wix refused the code', status: e.status, wixRequestId: e.wixRequestId })
}

/** The `exchangeCode` effect: the code for the instance's tokens, filed under the instance Wix names. */
export function exchangeCode(deps: EffectDeps) {
  const { wix, vault, now } = deps
  return fromPromise<ExchangeOutput, ExchangeInput>(async ({ input, signal }) => {
    // Snapshots of machine version 1 named the claim `instanceId`.
    const claimed = input.claimedInstanceId ?? (input as { instanceId?: string }).instanceId ?? ''
    // A re-run (after a crash, a retry, a shutdown) finds the tokens an earlier run stored:
    // the code is spent, so calling Wix again could only fail. This is what makes the
    // exchange happen once. The first run has no earlier run to look for.
    const rerun = input.attempt === undefined || input.attempt > 1
    let instanceId = rerun ? await vault.exchangedBy(input.installationId) : undefined
    if (!instanceId) {
      let tokens = rerun ? await vault.held(input.installationId) : undefined
      if (!tokens) {
        again(deps.retries, input.attempt)
        const obtainedAt = now()
        tokens = await wix.exchangeCode(input.code, { signal }).then((t) => ({ ...t, obtainedAt }), (err: unknown) => refused(deps, err, input))
        // The code is spent now and these tokens exist nowhere else: keep them before anything
        // else can fail, so a later run finishes from here instead of spending the code again.
        await persistently(() => vault.hold(input.installationId, tokens!))
      }
      // The browser's instanceId is a claim anyone can edit: the tokens say whose they are.
      // No abort from here on: what is left only files tokens that already exist.
      // Tokens held by an earlier run may have outlived their 5-minute access token.
      const fresh = now().getTime() - tokens.obtainedAt.getTime() < ACCESS_TOKEN_TTL_MS - 30_000
      const access = fresh ? tokens.accessToken : (await wix.refreshAccessToken(tokens.refreshToken)).accessToken
      instanceId = await persistently(() => wix.instanceOf(access), { attempts: 4, transient: isWixBlip })
      // Filed from the copy `hold` keeps (already encrypted), in the database. Nothing filed may
      // also mean another run of this exchange (one whose lease ran out) filed them first, taking
      // the held copy with it: then they are this installation's all the same.
      const saved = await persistently(() => vault.fileHeld(instanceId!, input.installationId, ['CodeReceived']))
      if (!saved && (await persistently(() => vault.exchangedBy(input.installationId))) !== instanceId) throw superseded(instanceId)
    }
    // A webhook-started installation of the same install (AppInstalled came first) gives way to
    // this one, which holds the refresh token: one live installation per install.
    const supersedes = deps.supersede ? await persistently(() => deps.supersede!(instanceId!, input.installationId)) : []
    return {
      exchangedAt: now().toISOString(),
      instanceId,
      ...(supersedes.length > 0 && { supersedes }),
      ...(claimed.toLowerCase() !== instanceId && {
        mismatch: `The Redirect URL named instance ${claimed || '(none)'}, but Wix says the tokens belong to instance ${instanceId}: they were stored under ${instanceId} only.`,
      }),
    }
  })
}
