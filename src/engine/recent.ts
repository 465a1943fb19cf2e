import type { WorkflowRow } from './store.ts'

/**
 * How many workflows' last rows a process keeps to skip the read before a write. A flow's
 * events come close together, so the few hundred flows in flight are what matters; a miss
 * costs one read, while every row kept costs memory for as long as the process lives.
 */
const RECENT_ROWS = 1_000

/**
 * Rows this process wrote or read last, newest last; bounded. A view that may be stale: `send`
 * writes on it fenced by version, `waitFor` starts from it (see there).
 */
export function createRecentRows() {
  const rows = new Map<string, WorkflowRow>()
  return {
    get: (id: string): WorkflowRow | undefined => rows.get(id),
    remember(row: WorkflowRow) {
      const { job_held: _ignored, ...plain } = row as WorkflowRow & { job_held?: unknown }
      rows.delete(row.id)
      rows.set(row.id, plain)
      if (rows.size > RECENT_ROWS) rows.delete(rows.keys().next().value!)
    },
    forget(id: string) {
      rows.delete(id)
    },
  }
}

export type RecentRows = ReturnType<typeof createRecentRows>
