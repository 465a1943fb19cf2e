import type { Sql } from 'postgres'

/** undefined_file: "requested WAL segment … has already been removed". */
const UNDEFINED_FILE = '58P01'
/** How often WAL is read back while a round runs: Postgres recycles segments at checkpoints. */
const READ_EVERY_MS = 1_000

/**
 * WAL one database writes during a stretch of time. The server's WAL is one stream, shared with
 * every other database on it (tests, another benchmark): pg_walinspect reads the records back,
 * and a database's are those that touch its relations plus the commit records of their
 * transactions. `sql` needs superuser once, to create the extension in its (benchmark) database.
 */
export async function createWalMeter(sql: Sql) {
  await sql`create extension if not exists pg_walinspect`
  // Only flushed WAL can be read back.
  const position = async () => (await sql<{ lsn: string }[]>`select pg_current_wal_flush_lsn()::text as lsn`)[0]!.lsn

  /** Bytes by database and resource manager (Heap, Btree, Transaction…), and how many of them are full-page images. */
  async function bytesBetween(from: string, to: string, databases: string[]) {
    const rows = await sql<{ datname: string; rm: string | null; bytes: string; fpi: string }[]>`
      with r as (select xid, resource_manager, record_length, fpi_length, block_ref from pg_get_wal_records_info(${from}::pg_lsn, ${to}::pg_lsn)),
      d as (select datname, '% rel %/' || oid || '/%' as pattern from pg_database where datname = any(${databases})),
      writers as (select distinct d.datname, r.xid from r join d on r.block_ref like d.pattern where r.xid <> '0')
      select d.datname, r.resource_manager as rm, coalesce(sum(r.record_length), 0)::text as bytes,
             coalesce(sum(r.fpi_length), 0)::text as fpi
      from d left join r on r.block_ref like d.pattern
        or (r.resource_manager = 'Transaction' and exists (select 1 from writers w where w.datname = d.datname and w.xid = r.xid))
      group by d.datname, r.resource_manager`
    return rows
  }

  /** Starts counting; `stop()` gives bytes per database (null if WAL was recycled before it was read) and the server's. */
  async function start(databases: string[]) {
    const first = await position()
    let from = first
    let lost = false
    let failure: unknown
    const totals = new Map(databases.map((d) => [d, 0]))
    /** database → resource manager → bytes; and the full-page images among them */
    const byManager = new Map(databases.map((d) => [d, {} as Record<string, number>]))
    const fpi = new Map(databases.map((d) => [d, 0]))
    const read = async () => {
      try {
        const to = await position()
        if (to === from) return
        const bytes = await bytesBetween(from, to, databases).catch((err: { code?: string }) => {
          // The segment was recycled before we read it (a busy server): the count is incomplete.
          if (err.code !== UNDEFINED_FILE) throw err
          lost = true
        })
        for (const row of bytes ?? []) {
          totals.set(row.datname, totals.get(row.datname)! + Number(row.bytes))
          fpi.set(row.datname, fpi.get(row.datname)! + Number(row.fpi))
          if (row.rm) {
            const m = byManager.get(row.datname)!
            m[row.rm] = (m[row.rm] ?? 0) + Number(row.bytes)
          }
        }
        from = to
      } catch (err) {
        // Kept for stop(): a rejection here would go unhandled between two reads.
        failure ??= err
      }
    }
    let reading = Promise.resolve()
    const timer = setInterval(() => { reading = reading.then(read) }, READ_EVERY_MS)
    return {
      async stop(): Promise<{
        server: number
        byDatabase: Record<string, number | null>
        fpiByDatabase: Record<string, number | null>
        byManager: Record<string, Record<string, number> | null>
      }> {
        clearInterval(timer)
        await reading
        await read()
        if (failure) throw failure
        const [{ n }] = await sql<{ n: string }[]>`select pg_wal_lsn_diff(${from}::pg_lsn, ${first}::pg_lsn)::text as n`
        const each = <T>(f: (d: string) => T) => Object.fromEntries(databases.map((d) => [d, lost ? null : f(d)]))
        return { server: Number(n), byDatabase: each((d) => totals.get(d)!), fpiByDatabase: each((d) => fpi.get(d)!), byManager: each((d) => byManager.get(d)!) }
      },
    }
  }
  return { start }
}
