import type { Sql } from 'postgres'
import { installationMachine } from '../../machines/installation.ts'
import { listWorkflows, toWorkflow } from '../engine/index.ts'
import { MACHINE } from '../installation/queries.ts'

/** An inspector is told of at most this many at once: the most recently moved. */
const AT_MOST = 1_000

/** The top-level states of an install under way: neither ended nor at rest in `Finished`. */
const UNDER_WAY = Object.values(installationMachine.root.states)
  .filter((node) => node.type !== 'final' && node.key !== 'Finished')
  .map((node) => node.key)

/** The installations in flight, as they stand, oldest-moved first (the order they are announced in). */
export async function inFlightInstallations(sql: Sql, limit = AT_MOST) {
  const rows = await listWorkflows(sql, { machine: MACHINE, state: UNDER_WAY, active: true }, { order: 'updated', limit })
  return rows.map(toWorkflow).reverse()
}
