import type { Sql } from 'postgres'
import type { WorkflowRow } from '../engine/store.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** An installation by its id or, the newest for it, by its Wix instanceId. */
export async function findInstallationId(sql: Sql, idOrInstanceId: string): Promise<string | undefined> {
  const byId = UUID.test(idOrInstanceId)
    ? await sql<{ id: string }[]>`select id from workflows where id = ${idOrInstanceId} and machine = 'installation'`
    : []
  if (byId[0]) return byId[0].id
  const [byKey] = await sql<{ id: string }[]>`
    select id from workflows where machine = 'installation' and key = ${idOrInstanceId}
    order by created_at desc limit 1`
  return byKey?.id
}

/** The installation that issued an OAuth state, found by the state's hash. */
export async function findByStateHash(sql: Sql, stateHash: string) {
  const [row] = await sql<Pick<WorkflowRow, 'id' | 'state'>[]>`
    select id, state from workflows
    where machine = 'installation' and snapshot -> 'context' ->> 'stateHash' = ${stateHash}`
  return row
}
