import type { Sql } from 'postgres'
import { isDatabaseUnavailable } from '../db/connect.ts'
import type { InstallationLifecycle, LifecycleOutcome } from '../installation/lifecycle.ts'
import { normalizeInstanceId, WIX_GUID } from '../wix/ids.ts'
import type { WebhookVerifier, WixWebhookEvent } from '../wix/webhook-verifier.ts'
import * as store from './store.ts'

/** A delivery is one process's for this long while it acts on it. */
const CLAIM_MS = 30_000
/** A delivery not acted on this long after it arrived is taken up by the sweep. */
const STRANDED_AFTER_MS = 5_000
/** A delivery that waits (for Wix to answer) is tried again after this. */
const DEFER_MS = 5_000

interface Log {
  info(o: object, m: string): void
  warn(o: object, m: string): void
  error(o: object, m: string): void
}

/**
 * Wix's webhooks, handled once each: a verified delivery is committed before it is answered
 * (well within Wix's 1,250 ms), acted on right after, and taken up again by a periodic sweep if
 * the process died in between. Acting is idempotent, so a repeat after a crash changes nothing.
 */
export function createWebhookProcessor(deps: {
  sql: Sql; lifecycle: InstallationLifecycle; log: Log; sweepMs?: number
  /** Verifies each stored body again before it is acted on; without one, nothing is acted on. */
  verify: WebhookVerifier | undefined
}) {
  const { sql, lifecycle, log } = deps
  const running = new Set<Promise<void>>()
  let sweepTimer: ReturnType<typeof setTimeout> | undefined
  let stopped = true
  /** Set once stop() is called: nothing new starts while the process shuts down. */
  let closing = false

  async function act(d: store.Delivery & { age_ms: number }): Promise<LifecycleOutcome> {
    if (d.event_type === 'AppInstalled') {
      const origin = typeof d.data.originInstanceId === 'string' && WIX_GUID.test(d.data.originInstanceId)
        ? normalizeInstanceId(d.data.originInstanceId) : null
      return lifecycle.installed(d.instance_id, origin)
    }
    if (d.event_type === 'AppRemoved') return lifecycle.removed(d.instance_id, d.issued_at)
    return { done: 'recorded' }
  }

  async function handle(id: string) {
    const claimed = await store.claimDelivery(sql, id, CLAIM_MS)
    if (!claimed) return
    // What is acted on is what Wix signed, read from the stored body again: a row written into
    // the database by anything but a verified delivery (its body forged, missing, or another
    // delivery's) is closed unacted.
    const event = await signedEvent(claimed)
    if (!event) {
      await store.markProcessed(sql, id, 'refused: its stored body is not a delivery Wix signed')
      log.warn({ deliveryId: id, eventType: claimed.event_type }, 'webhook delivery refused: its stored body does not verify again')
      const next = await store.nextForInstance(sql, claimed.instance_id)
      if (next) soon(next)
      return
    }
    const d = { ...claimed, event_type: event.eventType, instance_id: event.instanceId, data: event.data, issued_at: event.issuedAt }
    // An instance's events in order: an AppInstalled of a reinstall waits for the AppRemoved before it.
    if (!d.first) {
      // Handed straight back: the earlier one, once processed, takes this one up at once. If it
      // finished while this was being handed back (and found this one still claimed), go now.
      await store.deferDelivery(sql, id, 0, 'deferred: waiting for an earlier delivery for this instance')
      if ((await store.nextForInstance(sql, d.instance_id)) === id) soon(id)
      return
    }
    const outcome = await act(d)
    if ('deferred' in outcome) {
      await store.deferDelivery(sql, id, DEFER_MS, `deferred: ${outcome.deferred}`)
      log.info({ deliveryId: id, eventType: d.event_type, instanceId: d.instance_id, outcome: outcome.deferred }, 'webhook deferred')
      return
    }
    await store.markProcessed(sql, id, outcome.done)
    log.info({ deliveryId: id, eventType: d.event_type, instanceId: d.instance_id, outcome: outcome.done }, 'webhook processed')
    // Deliveries arrive out of order: a reinstall's AppInstalled may have come (and found the old
    // installation live) before the AppRemoved that Wix signed first.
    if (d.event_type === 'AppRemoved' && d.issued_at) await store.reopenLaterInstalls(sql, d.instance_id, d.issued_at)
    // The instance's next delivery, if one waited for this one, goes now rather than at the sweep.
    const next = await store.nextForInstance(sql, d.instance_id)
    if (next) soon(next)
  }

  async function signedEvent(d: store.Delivery): Promise<WixWebhookEvent | undefined> {
    if (!deps.verify || d.body === null) return undefined
    const event = await deps.verify(d.body, { stored: true }).catch(() => undefined)
    return event?.deliveryId === d.id ? event : undefined
  }

  /** Acts on a delivery in the background; a failure leaves it to the sweep. */
  function soon(id: string) {
    if (closing) return // the sweep of whichever instance runs next takes it up
    const p = handle(id)
      .catch((err: unknown) => {
        const level = isDatabaseUnavailable(err) ? 'warn' : 'error'
        log[level]({ deliveryId: id, err: { code: (err as { code?: string }).code, message: (err as Error).message } }, 'webhook processing failed; the sweep retries it')
      })
      .finally(() => running.delete(p))
    running.add(p)
  }

  async function sweep() {
    for (const id of await store.strandedDeliveries(sql, STRANDED_AFTER_MS, 50)) soon(id)
  }

  function schedule() {
    sweepTimer = setTimeout(async () => {
      await sweep().catch((err: unknown) => log.warn({ err: { code: (err as { code?: string }).code } }, 'webhook sweep failed'))
      if (!stopped) schedule()
    }, deps.sweepMs ?? STRANDED_AFTER_MS)
    sweepTimer.unref?.()
  }

  return {
    /**
     * Records a verified delivery; true when it is new (and will be acted on), false for a repeat.
     * The id is the verifier's `deliveryId`: what Wix signed, however the body spells it.
     */
    async receive(body: string, event: WixWebhookEvent): Promise<{ id: string; duplicate: boolean }> {
      const id = event.deliveryId
      const fresh = await store.recordDelivery(sql, {
        id, event_type: event.eventType, instance_id: event.instanceId, data: event.data, issued_at: event.issuedAt, body: body.trim(),
      })
      if (fresh) soon(id)
      return { id, duplicate: !fresh }
    },
    sweep,
    start() {
      stopped = false
      schedule()
    },
    /** Stops sweeping and waits for deliveries being acted on. */
    async stop() {
      stopped = true
      closing = true
      clearTimeout(sweepTimer)
      while (running.size) await Promise.allSettled([...running])
    },
    /** Resolves when no delivery is being acted on (tests). */
    async idle() {
      while (running.size) await Promise.allSettled([...running])
    },
  }
}

export type WebhookProcessor = ReturnType<typeof createWebhookProcessor>
