import { fromPromise } from 'xstate'
import {
  CODE_SPENT,
  INSTALLATION_MACHINE_VERSION,
  installationMachine,
  type ConfirmInput,
  type ConfirmOutput,
  type ExchangeInput,
  type ExchangeOutput,
  type FinishInput,
  type InstallationContext,
} from '../../machines/installation.ts'
import { defineWorkflow, type EarlierRun, type PersistedState, persistently } from '../engine/index.ts'
import { WixApiError } from '../wix/client.ts'
import { claimKey } from './queries.ts'
import type { RetryBudget } from '../wix/retry-budget.ts'
import { ACCESS_TOKEN_TTL_MS, TokenVaultError, type TokenVault, type WixTokens } from './token-vault.ts'

export interface InstallationWix {
  exchangeCode(code: string, o?: { signal?: AbortSignal }): Promise<WixTokens>
  refreshAccessToken(refreshToken: string, o?: { signal?: AbortSignal }): Promise<WixTokens>
  instanceOf(accessToken: string, o?: { signal?: AbortSignal }): Promise<string>
  clientCredentials(instanceId: string, o?: { signal?: AbortSignal }): Promise<{ accessToken: string; expiresInMs: number }>
  sendBiEvent(accessToken: string, o?: { signal?: AbortSignal }): Promise<void>
}

const superseded = (instanceId: string) => new TokenVaultError('TOKENS_SUPERSEDED',
  `the tokens were not stored: a newer installation of instance ${instanceId} holds its tokens, or this one has ended`)

/**
 * Version 1 kept the Redirect URL's instance id as the instance's; version 2 takes it only from
 * Wix. An installation still exchanging keeps the claim apart (its exchange verifies it).
 */
function migrate(state: PersistedState, from: number): PersistedState {
  if (from !== 1) throw new Error(`no migration from installation machine version ${from}`)
  const context = state.context as Record<string, unknown>
  const exchanging = state.value === 'CodeReceived'
  return {
    ...state,
    value: state.value === 'AppUrlHit' ? { AppUrlHit: 'redirecting' } : state.value,
    context: {
      ...context,
      claimedInstanceId: exchanging ? context.instanceId : null,
      instanceId: exchanging ? null : context.instanceId,
      originInstanceId: null,
    },
  }
}

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

/** The installation machine with its effects bound to Wix and the token vault. */
export function installationWorkflow(deps: {
  wix: InstallationWix; vault: TokenVault; now: () => Date; retries?: RetryBudget
  /** The engine's record of a job's earlier runs (engine/queries.ts `earlierRuns`); without it no code counts as spent. */
  earlierRuns?: (idempotencyKey: string, attempt: number) => Promise<EarlierRun[]>
  /**
   * Called (at least once) when a browser flow has stored the tokens Wix confirmed for an
   * instance: ends that instance's webhook-started installations in its favour, returning their ids.
   */
  supersede?: (instanceId: string, byInstallationId: string) => Promise<string[]>
}) {
  const { wix, vault, now } = deps
  /** Any run after the first calls Wix again: it spends this instance's retry budget first. */
  const again = (attempt: number | undefined) => (attempt === undefined || attempt > 1) && deps.retries?.take()
  /**
   * A refused re-run: tokens a run that lost its job (and lived) kept meanwhile are used; a code
   * an earlier run may have spent is a spent code (CodeSpentError); anything else is as Wix said.
   */
  async function refused(err: unknown, input: ExchangeInput & { idempotencyKey?: string }) {
    const e = err as { code?: string; message?: string; status?: number; wixRequestId?: string }
    const rerun = input.attempt !== undefined && input.attempt > 1
    if (e.code !== 'WIX_REJECTED' || !rerun || !input.idempotencyKey || !deps.earlierRuns) throw err
    const kept = await vault.held(input.installationId)
    if (kept) return kept
    if (!mayHaveSpentCode(await deps.earlierRuns(input.idempotencyKey, input.attempt!))) throw err
    throw new CodeSpentError({ message: e.message ?? 'Wix refused the code', status: e.status, wixRequestId: e.wixRequestId })
  }

  const machine = installationMachine.provide({
    actors: {
      exchangeCode: fromPromise<ExchangeOutput, ExchangeInput>(async ({ input, signal }) => {
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
            again(input.attempt)
            const obtainedAt = now()
            tokens = await wix.exchangeCode(input.code, { signal }).then((t) => ({ ...t, obtainedAt }), (err: unknown) => refused(err, input))
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
      }),
      confirmInstall: fromPromise<ConfirmOutput, ConfirmInput>(async ({ input, signal }) => {
        // Wix grants a client-credentials token for an instance only while the app is installed
        // there: the token is the proof, and the first one is kept for the app's backend.
        again((input as ConfirmInput & { attempt?: number }).attempt)
        const obtainedAt = now()
        const token = await wix.clientCredentials(input.instanceId, { signal }).catch(async (err: unknown) => {
          // A refusal ends the install only when Wix grants the app elsewhere: refused alike, or
          // with nothing to compare, it may be the app's own secret, and the install waits.
          // Wix labels a 401 as the app's: the verdict is the evidence's, as for a refused mint.
          const e = err as WixApiError
          if (e.code !== 'WIX_REJECTED' && e.code !== 'WIX_CLIENT_REJECTED') throw err
          if ((await vault.explainRefusal(input.instanceId, null, signal)) === 'instance') {
            if (e.code === 'WIX_REJECTED') throw err
            throw new WixApiError({ ...e, message: e.message, code: 'WIX_REJECTED', retryable: false })
          }
          throw new WixApiError({
            code: 'WIX_CLIENT_REJECTED', endpoint: 'oauth2/token', retryable: true,
            status: (err as { status?: number }).status,
            message: `${(err as Error).message}; Wix refuses other instances alike, or there is none to compare: ` +
              'taken for the app\'s credentials (check WIX_APP_ID and WIX_APP_SECRET), and confirmed again',
          })
        })
        const expiresAt = new Date(obtainedAt.getTime() + Math.max(0, token.expiresInMs - 60_000))
        const saved = await persistently(() => vault.save(input.instanceId, input.installationId,
          { accessToken: token.accessToken, refreshToken: null, expiresAt }, ['AppUrlHit']), { signal })
        if (!saved) {
          // A browser flow of this install stored its refresh token first: it carries the install on.
          const holder = await vault.holderOf(input.instanceId)
          if (holder?.refreshToken && holder.workflowId !== input.installationId) {
            return { confirmedAt: now().toISOString(), supersededBy: holder.workflowId }
          }
          throw superseded(input.instanceId)
        }
        return { confirmedAt: now().toISOString() }
      }),
      finishSetup: fromPromise<{ finishedAt: string }, FinishInput>(async ({ input, signal }) => {
        again((input as FinishInput & { attempt?: number }).attempt)
        const { accessToken } = await vault.accessToken(input.instanceId, { fresh: true, signal })
        await wix.sendBiEvent(accessToken, { signal })
        return { finishedAt: now().toISOString() }
      }),
    },
  })
  return defineWorkflow({
    name: 'installation',
    version: INSTALLATION_MACHINE_VERSION,
    machine,
    // Enough attempts to outlast the 10-minute code deadline: while the code is valid, a down
    // Wix is worth waiting for; the deadline, not the budget, ends a hopeless exchange.
    retry: { maxAttempts: 30, baseDelayMs: 1_000, maxDelayMs: 60_000 },
    migrate,
    project: (state) => {
      const context = state.context as unknown as InstallationContext
      // Until Wix confirms an instance, the installation is found by its claim, marked as one.
      const key = context.instanceId ?? (context.claimedInstanceId ? claimKey(context.claimedInstanceId) : null)
      return { key, reason: context.failure?.reason ?? null }
    },
  })
}
