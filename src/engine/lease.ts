import type { Fragment, Sql } from 'postgres'

/**
 * A lease: a row that is one holder's until a time, and anyone's again once that time has passed,
 * so a holder that died only delays the row's work by what was left of its lease. Every lease of
 * the service is taken, compared and renewed here, on the database's clock (`now()` in SQL) and
 * never a process's: instances whose clocks disagree, or a test that holds its own, cannot take
 * a row another still holds, nor keep one past its time. The columns are the caller's own.
 */
export interface LeaseColumns {
  /**
   * timestamptz: until when the row is held; null when no one holds it. A column, or an
   * expression to compare (an effect's lease is a field of its entry in its workflow's row).
   */
  until: string | Fragment
  /** text: who holds it, for a lease its holder renews and lets go of. Without one, anyone may. */
  owner?: string
}

/** The end of a lease of `ms` (a number, or a column of the statement) taken or renewed now. */
export const leaseEnd = (sql: Sql, ms: number | Fragment): Fragment => sql`now() + ${ms}::int * interval '1 millisecond'`

/** The SQL of one kind of lease, on the columns `c` of the caller's table. */
export function leaseOn(sql: Sql, c: LeaseColumns) {
  const until = () => (typeof c.until === 'string' ? sql(c.until) : c.until)
  const owner = () => {
    if (!c.owner) throw new Error(`a lease on ${c.until} has no owner column`)
    return sql(c.owner)
  }
  return {
    /** A condition: the lease was taken and ran out (it was not renewed in time). */
    lapsed: () => sql`${until()} < now()`,
    /** A condition: no one holds the row (never taken, let go, or its lease ran out). */
    free: () => sql`(${until()} is null or ${until()} < now())`,
    /** Assignments for a SET: the row is `holder`'s (or, with no owner column, simply taken) for `ms` from now. */
    take: (ms: number, holder?: string) =>
      holder === undefined ? sql`${until()} = ${leaseEnd(sql, ms)}` : sql`${owner()} = ${holder}, ${until()} = ${leaseEnd(sql, ms)}`,
    /** Assignments for a SET: `ms` more from now. Fence the statement with `heldBy`. */
    renew: (ms: number) => sql`${until()} = ${leaseEnd(sql, ms)}`,
    /**
     * A condition: `holder` still holds the row. Its renewals and writes are fenced by it, not by
     * the time: a lease that ran out is still its holder's until another takes it.
     */
    heldBy: (holder: string) => sql`${owner()} = ${holder}`,
    /** Assignments for a SET: no one holds the row; it is free at once. */
    release: () => (c.owner ? sql`${owner()} = null, ${until()} = null` : sql`${until()} = null`),
  }
}

export type Lease = ReturnType<typeof leaseOn>
