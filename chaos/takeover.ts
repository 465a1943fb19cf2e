import type { Sql } from 'postgres'

/** A query's rows, or `fallback` if it fails or does not answer in 5 s (a connection hung by a restart). */
const within = <T, F>(query: Promise<T>, fallback: F): Promise<T | F> =>
  Promise.race([query.catch(() => fallback), new Promise<F>((r) => setTimeout(() => r(fallback), 5_000))])

/**
 * How long a SIGKILLed instance's jobs wait for another instance: from the kill until each job it
 * held is claimed again (or ended) — the liveness the short, heartbeat-renewed leases buy.
 * Instances are told apart by the pid in their lease owner (`host-pid-random`).
 */
export function takeoverClock(sql: Sql) {
  const times: number[] = []
  const watches: Promise<void>[] = []

  async function watch(pid: number, killedAt: number) {
    const owner = `%-${pid}-%`
    const held = await within(sql<{ id: string; attempts: number }[]>`
      select id, attempts from wix_engine.live_jobs where status = 'running' and lease_owner like ${owner}`, [])
    const waiting = new Map(held.map((j) => [j.id, j.attempts]))
    const giveUpAt = killedAt + 120_000
    while (waiting.size && Date.now() < giveUpAt) {
      await new Promise((r) => setTimeout(r, 200))
      const ids = [...waiting.keys()]
      const rows = await within(sql<{ id: string; attempts: number; status: string; lease_owner: string | null }[]>`
        select id, attempts, status, lease_owner from wix_engine.live_jobs where id = any(${ids}::uuid[])`, undefined)
      if (!rows) continue
      const found = new Map(rows.map((row) => [row.id, row]))
      for (const id of ids) {
        const row = found.get(id)
        // Gone: it ended (its result landed, or it was cancelled).
        const stillDead = row && row.status === 'running' && row.lease_owner?.includes(`-${pid}-`)
        const moved = !row || row.attempts !== waiting.get(id) || !stillDead
        if (moved) {
          times.push(Date.now() - killedAt)
          waiting.delete(id)
        }
      }
    }
  }

  return {
    /** Starts timing the jobs the process `pid`, killed at `killedAt`, still held. */
    killed(pid: number, killedAt: number) {
      watches.push(watch(pid, killedAt))
    },
    /** p50, p90 and max in ms over every job taken over, once every watch has ended. */
    async report() {
      await Promise.all(watches)
      const sorted = [...times].sort((a, b) => a - b)
      const at = (q: number) => sorted[Math.floor((sorted.length - 1) * q)] ?? null
      return { jobs: sorted.length, p50Ms: at(0.5), p90Ms: at(0.9), maxMs: sorted.at(-1) ?? null }
    },
  }
}
