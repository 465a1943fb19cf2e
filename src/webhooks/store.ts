import type { Sql } from 'postgres'

/** The webhook deliveries table's SQL, one function per operation; times from the database. */

export interface Delivery {
  id: string
  event_type: string
  instance_id: string
  data: Record<string, unknown>
}

/** Records a verified delivery. False when it was recorded before (Wix repeating it). */
export async function recordDelivery(sql: Sql, d: Delivery): Promise<boolean> {
  const rows = await sql`
    insert into webhook_deliveries (id, event_type, instance_id, data, received_at)
    values (${d.id}, ${d.event_type}, ${d.instance_id}, ${sql.json(d.data as never)}::jsonb, now())
    on conflict (id) do nothing
    returning id`
  return rows.length === 1
}

/**
 * Takes an unprocessed delivery for `leaseMs`: one process acts on it at a time, and a process
 * that died holding it only delays it until the lease runs out.
 */
export async function claimDelivery(sql: Sql, id: string, leaseMs: number): Promise<Delivery | undefined> {
  const [row] = await sql<Delivery[]>`
    update webhook_deliveries set claimed_until = now() + ${leaseMs} * interval '1 millisecond'
    where id = ${id} and processed_at is null and (claimed_until is null or claimed_until < now())
    returning id, event_type, instance_id, data`
  return row
}

export async function markProcessed(sql: Sql, id: string, outcome: string) {
  await sql`update webhook_deliveries set processed_at = now(), claimed_until = null, outcome = ${outcome} where id = ${id}`
}

/** Deliveries received a while ago and still not acted on (their process died), oldest first. */
export async function strandedDeliveries(sql: Sql, olderThanMs: number, limit: number) {
  const rows = await sql<{ id: string }[]>`
    select id from webhook_deliveries
    where processed_at is null and received_at < now() - ${olderThanMs} * interval '1 millisecond'
      and (claimed_until is null or claimed_until < now())
    order by received_at limit ${limit}`
  return rows.map((r) => r.id)
}
