import type { Sql } from 'postgres'
import { leaseOn } from '../engine/index.ts'

/** The webhook deliveries table's SQL, one function per operation; times from the database. */

/**
 * A delivery's claim: a lease with no owner, never renewed (acting on a delivery is idempotent,
 * so a process that takes it up after a claim ran out changes nothing); a deferred delivery is
 * held back by the same column.
 */
const claim = (sql: Sql) => leaseOn(sql, { until: 'claimed_until' })

export interface Delivery {
  id: string
  event_type: string
  instance_id: string
  data: Record<string, unknown>
  issued_at: Date | null
  /** The signed body as Wix sent it; null only in rows recorded before it was kept. */
  body: string | null
}

/** Records a verified delivery. False when it was recorded before (Wix repeating it). */
export async function recordDelivery(sql: Sql, d: Delivery): Promise<boolean> {
  const rows = await sql`
    insert into wix_install.webhook_deliveries (id, event_type, instance_id, data, issued_at, body, received_at)
    values (${d.id}, ${d.event_type}, ${d.instance_id}, ${sql.json(d.data as never)}::jsonb, ${d.issued_at}, ${d.body}, now())
    on conflict (id) do nothing
    returning id`
  return rows.length === 1
}

/**
 * Takes an unprocessed delivery for `leaseMs`: one process acts on it at a time, and a process
 * that died holding it only delays it until the lease runs out. `first` says whether no earlier
 * delivery for the same instance is still unprocessed: an instance's events are acted on in the
 * order Wix signed them (or, without a signing time, received them).
 */
export async function claimDelivery(sql: Sql, id: string, leaseMs: number) {
  const [row] = await sql<(Delivery & { first: boolean; age_ms: number })[]>`
    update wix_install.webhook_deliveries d set ${claim(sql).take(leaseMs)}
    where id = ${id} and processed_at is null and ${claim(sql).free()}
    returning id, event_type, instance_id, data, issued_at, body,
      extract(epoch from now() - received_at)::float8 * 1000 as age_ms,
      not exists (
        select 1 from wix_install.webhook_deliveries e
        where e.instance_id = d.instance_id and e.processed_at is null and e.id <> d.id
          and (coalesce(e.issued_at, e.received_at), e.id) < (coalesce(d.issued_at, d.received_at), d.id)
      ) as first`
  return row
}

/** Hands a claimed delivery back, to be taken up again after `delayMs`. */
export async function deferDelivery(sql: Sql, id: string, delayMs: number, outcome: string) {
  await sql`
    update wix_install.webhook_deliveries set ${claim(sql).take(delayMs)}, outcome = ${outcome}
    where id = ${id}`
}

export async function markProcessed(sql: Sql, id: string, outcome: string) {
  await sql`update wix_install.webhook_deliveries set processed_at = now(), ${claim(sql).release()}, outcome = ${outcome} where id = ${id}`
}

/** Deliveries received a while ago and still not acted on (their process died, or they wait), oldest first. */
export async function strandedDeliveries(sql: Sql, olderThanMs: number, limit: number) {
  const rows = await sql<{ id: string }[]>`
    select id from wix_install.webhook_deliveries
    where processed_at is null and received_at < now() - ${olderThanMs} * interval '1 millisecond'
      and ${claim(sql).free()}
    order by coalesce(issued_at, received_at), id limit ${limit}`
  return rows.map((r) => r.id)
}

/** The next unprocessed delivery for an instance, in the order they are acted on. */
export async function nextForInstance(sql: Sql, instanceId: string): Promise<string | undefined> {
  const [row] = await sql<{ id: string }[]>`
    select id from wix_install.webhook_deliveries
    where instance_id = ${instanceId} and processed_at is null
    order by coalesce(issued_at, received_at), id limit 1`
  return row?.id
}

/**
 * AppInstalled deliveries Wix signed after `issuedAt` that found a live installation and changed
 * nothing: an AppRemoved signed before them arrived late, so they are to be acted on again.
 */
export async function reopenLaterInstalls(sql: Sql, instanceId: string, issuedAt: Date): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    update wix_install.webhook_deliveries set processed_at = null, ${claim(sql).release()},
      outcome = 'reopened: an AppRemoved signed before it arrived after it'
    where instance_id = ${instanceId} and event_type = 'AppInstalled' and issued_at > ${issuedAt}
      and processed_at is not null and outcome like 'ignored:%'
    returning id`
  return rows.map((r) => r.id)
}
