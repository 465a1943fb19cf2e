import type { WixCallInfo } from './client.ts'

export interface CredentialsStatus {
  /** `rejected` while Wix's last word on the app's client id and secret was a refusal. */
  status: 'ok' | 'rejected' | 'unknown'
  lastRejectedAt: Date | null
  lastAcceptedAt: Date | null
  rejections: number
}

/**
 * What this process last heard from Wix about the app's own credentials (WIX_APP_ID and
 * WIX_APP_SECRET). A wrong or rotated secret fails every grant for every instance alike: it is
 * surfaced here, in the logs and in metrics, and never taken for a verdict on an installation.
 */
export function createCredentialsHealth(opts: { now: () => Date; onRejected?: (info: WixCallInfo) => void }) {
  let lastRejectedAt: Date | null = null
  let lastAcceptedAt: Date | null = null
  let rejections = 0
  return {
    /** Every Wix call's outcome; only calls that authenticate the app count. */
    record(info: WixCallInfo) {
      if (info.code === 'WIX_CLIENT_REJECTED') {
        lastRejectedAt = opts.now()
        rejections++
        opts.onRejected?.(info)
      } else if (info.outcome === 'ok' && info.grant !== undefined) {
        lastAcceptedAt = opts.now()
      }
    },
    status(): CredentialsStatus {
      const status = lastRejectedAt && (!lastAcceptedAt || lastRejectedAt >= lastAcceptedAt) ? 'rejected' : lastAcceptedAt ? 'ok' : 'unknown'
      return { status, lastRejectedAt, lastAcceptedAt, rejections }
    },
  }
}

export type CredentialsHealth = ReturnType<typeof createCredentialsHealth>
