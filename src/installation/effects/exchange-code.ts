import { fromPromise } from 'xstate'
import { CODE_SPENT, type ExchangeInput, type ExchangeOutput } from '../../../machines/installation.ts'
import { type EarlierRun, persistently } from '../../engine/index.ts'
import { ACCESS_TOKEN_TTL_MS, type ObtainedTokens } from '../token-vault.ts'
import { again, superseded, type EffectDeps } from './deps.ts'

/** Tokens are filed (or held) only while their installation still awaits its exchange. */
const AWAITING = ['CodeReceived']

type RunInput = ExchangeInput & { idempotencyKey?: string }

/** A Wix call that failed in a way worth repeating (network, 5xx, 429). */
const isWixBlip = (err: unknown) => (err as { retryable?: boolean }).retryable === true

/**
 * A run that failed so did not spend the code: Wix's own answer that it did not do the work (5xx,
 * 429), or this instance's retry budget holding the run back before its call (`obtain` asks the
 * budget right before the exchange, and only there).
 */
const WIX_NOT_DONE = ['WIX_UNAVAILABLE', 'WIX_RATE_LIMITED', 'WIX_RETRY_BUDGET']
/**
 * A run that may have spent the code and kept nothing: it left no record (it died, or lost its
 * lease), its call timed out or was cut, or it failed after Wix's answer without keeping the tokens
 * (TokensNotKeptError). Only runs Wix answered "not done" are ruled out.
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
 * Tokens Wix issued that this run could neither file nor hold (the database stayed out): the code
 * is spent and they are gone. Its own code, never Wix's "not done" (a lookup's WIX_UNAVAILABLE,
 * say), so the retry that Wix refuses counts this run as one that spent the code.
 */
class TokensNotKeptError extends Error {
  readonly code = 'TOKENS_NOT_KEPT'
  readonly retryable = true
  constructor(failure: unknown, holding: unknown) {
    super(`Wix exchanged the code, but its tokens could be neither filed (${messageOf(failure)}) nor held (${messageOf(holding)})`)
  }
}

const messageOf = (err: unknown) => String((err as { message?: unknown }).message ?? err).slice(0, 100)

/**
 * A refused re-run: tokens a run that lost its job (and lived) held or filed meanwhile are used; a
 * code an earlier run may have spent is a spent code (CodeSpentError); anything else is as Wix said.
 */
async function refused(deps: EffectDeps, err: unknown, input: RunInput): Promise<{ held: ObtainedTokens } | { instanceId: string }> {
  const e = err as { code?: string; message?: string; status?: number; wixRequestId?: string }
  const rerun = input.attempt !== undefined && input.attempt > 1
  if (e.code !== 'WIX_REJECTED' || !rerun || !input.idempotencyKey || !deps.earlierRuns) throw err
  const held = await deps.vault.held(input.installationId)
  if (held) return { held }
  // Looked at after the held copy: filing one deletes it, and what is filed stays filed.
  const instanceId = await deps.vault.exchangedBy(input.installationId)
  if (instanceId) return { instanceId }
  if (!mayHaveSpentCode(await deps.earlierRuns(input.idempotencyKey, input.attempt!))) throw err
  throw new CodeSpentError({ message: e.message ?? 'Wix refused the code', status: e.status, wixRequestId: e.wixRequestId })
}

/**
 * Whose the tokens are: Wix's word (the browser's instanceId is a claim anyone can edit). Tokens
 * held by an earlier run may have outlived their 5-minute access token: it is refreshed first.
 */
async function instanceOf(deps: EffectDeps, tokens: ObtainedTokens, signal: AbortSignal) {
  const fresh = deps.now().getTime() - tokens.obtainedAt.getTime() < ACCESS_TOKEN_TTL_MS - 30_000
  const access = fresh ? tokens.accessToken : (await deps.wix.refreshAccessToken(tokens.refreshToken, { signal })).accessToken
  return persistently(() => deps.wix.instanceOf(access, { signal }), { attempts: 4, transient: isWixBlip, signal })
}

/**
 * Nothing filed may also mean another run of this exchange (one whose lease ran out) filed them
 * first: then they are this installation's all the same. Else it moved on, or a newer one holds them.
 */
async function confirmFiled(deps: EffectDeps, workflowId: string, instanceId: string, saved: boolean) {
  if (!saved && (await persistently(() => deps.vault.exchangedBy(workflowId))) !== instanceId) throw superseded(instanceId)
  return instanceId
}

/** Files a copy an earlier run held (`fileHeld`, in the database, dropping the copy). A failure leaves it held. */
async function fileHeld(deps: EffectDeps, workflowId: string, tokens: ObtainedTokens, signal: AbortSignal) {
  const instanceId = await instanceOf(deps, tokens, signal)
  const saved = await persistently(() => deps.vault.fileHeld(instanceId, workflowId, AWAITING), { signal })
  return confirmFiled(deps, workflowId, instanceId, saved)
}

/**
 * Files the tokens this run got from Wix straight under their instance: one row written, no copy
 * first. Until then they exist only here, so a failure that a retry could finish from (the lookup
 * failing for good, the database out, the run aborted) holds them before it leaves; a final one
 * ends the installation, whose end drops anything held. A process that dies here loses them: its
 * retry finds the code spent and sends the browser back to Wix for a new one (CodeSpentError).
 */
async function fileFresh(deps: EffectDeps, workflowId: string, tokens: ObtainedTokens, signal: AbortSignal) {
  try {
    const instanceId = await instanceOf(deps, tokens, signal)
    const filed = { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, expiresAt: new Date(tokens.obtainedAt.getTime() + ACCESS_TOKEN_TTL_MS) }
    const saved = await persistently(() => deps.vault.save(instanceId, workflowId, filed, AWAITING), { signal })
    return await confirmFiled(deps, workflowId, instanceId, saved)
  } catch (err) {
    if ((err as { retryable?: boolean }).retryable === false) throw err
    // Not under the run's signal: an aborted run holds them all the more.
    await persistently(() => deps.vault.hold(workflowId, tokens, AWAITING)).catch((holding: unknown) => {
      throw new TokensNotKeptError(err, holding)
    })
    throw err
  }
}

/** The tokens for the code, filed: from a copy an earlier run held, else from Wix. Returns their instance. */
async function obtain(deps: EffectDeps, input: RunInput, rerun: boolean, signal: AbortSignal): Promise<string> {
  const held = rerun ? await deps.vault.held(input.installationId) : undefined
  // The code is spent: calling Wix again could only fail. This is what makes the exchange happen once.
  if (held) return fileHeld(deps, input.installationId, held, signal)
  again(deps.retries, input.attempt)
  const obtainedAt = deps.now()
  const got = await deps.wix.exchangeCode(input.code, { signal })
    .then((t) => ({ fresh: { ...t, obtainedAt } }), (err: unknown) => refused(deps, err, input))
  if ('instanceId' in got) return got.instanceId
  return 'held' in got ? fileHeld(deps, input.installationId, got.held, signal) : fileFresh(deps, input.installationId, got.fresh, signal)
}

/** The `exchangeCode` effect: the code for the instance's tokens, filed under the instance Wix names. */
export function exchangeCode(deps: EffectDeps) {
  const { vault, now } = deps
  return fromPromise<ExchangeOutput, ExchangeInput>(async ({ input, signal }) => {
    // Snapshots of machine version 1 named the claim `instanceId`.
    const claimed = input.claimedInstanceId ?? (input as { instanceId?: string }).instanceId ?? ''
    // A re-run (after a crash, a retry, a shutdown) looks for what an earlier run filed or held.
    // The first run has no earlier run to look for.
    const rerun = input.attempt === undefined || input.attempt > 1
    const instanceId = (rerun ? await vault.exchangedBy(input.installationId) : undefined) ?? await obtain(deps, input, rerun, signal)
    // A webhook-started installation of the same install (AppInstalled came first) gives way to
    // this one, which holds the refresh token: one live installation per install.
    const supersedes = deps.supersede ? await persistently(() => deps.supersede!(instanceId, input.installationId)) : []
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
