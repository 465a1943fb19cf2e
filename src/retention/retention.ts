import { hostname } from 'node:os'
import { randomUUID } from 'node:crypto'
import type { Sql } from 'postgres'
import { installationMachine } from '../../machines/installation.ts'
import type { RetentionConfig } from '../config.ts'
import { leaseOn, toSafeError } from '../engine/index.ts'
import { periodically } from '../periodic.ts'
import { BATCH, deleteEnded, pruneDeadJobs, pruneFinished, pruneWebhooks, START, type Watermark } from './prune.ts'

const NAME = 'retention'
/** How long a run is this instance's without news, on the database's clock; every batch extends it. */
const LEASE_MS = 5 * 60_000

interface Logger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

/** The machine's own final states; ConsentAbandoned (nobody came back) has an age of its own. */
const FINAL = Object.entries(installationMachine.config.states ?? {})
  .filter(([, node]) => (node as { type?: string }).type === 'final')
  .map(([name]) => name)
const FAILED = FINAL.filter((s) => s !== 'ConsentAbandoned')

export type RetentionReport = Record<'abandoned' | 'failed' | 'finished' | 'history' | 'jobs' | 'deadJobs' | 'webhooks', number>

export interface RetentionOptions {
  sql: Sql
  config: RetentionConfig
  now: () => Date
  log: Logger
  /** Names this instance on the lease; made up when not given. */
  owner?: string
}

/**
 * Deletes what no one needs any more, by the configured ages: one instance at a time (a leased
 * row in `maintenance`), on a schedule kept in that row, in batches of bounded statements, with
 * its progress saved after each so a run cut short by a restart resumes where it stopped. Ages
 * and the schedule are on the service's clock (`now`, which tests move); the lease is on the
 * database's, so instances whose clocks disagree never hold a run at once.
 */
export function createRetention(opts: RetentionOptions) {
  const { sql, config, now, log } = opts
  const owner = opts.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  const ago = (ms: number) => new Date(now().getTime() - ms)
  const lease = leaseOn(sql, { owner: 'owner', until: 'lease_until' })

  /** The run, if it is due and no other instance holds it; its saved progress. */
  async function claim(): Promise<{ finished: Watermark } | undefined> {
    const at = now()
    await sql`insert into wix_install.maintenance (name, next_run_at) values (${NAME}, ${at}) on conflict (name) do nothing`
    const [row] = await sql<{ progress: { finished?: Watermark } }[]>`
      update wix_install.maintenance set ${lease.take(LEASE_MS, owner)}
      where name = ${NAME} and next_run_at <= ${at} and ${lease.free()}
      returning progress`
    return row && { finished: row.progress.finished ?? START }
  }

  /** Saves progress and extends the lease; false when the lease was lost (another instance took over). */
  async function checkpoint(finished: Watermark): Promise<boolean> {
    const rows = await sql`
      update wix_install.maintenance set progress = ${sql.json({ finished } as never)}, ${lease.renew(LEASE_MS)}
      where name = ${NAME} and ${lease.heldBy(owner)}
      returning 1`
    return rows.length === 1
  }

  /**
   * Repeats a batch until it comes back short, checkpointing after each. False when the run must
   * end early: its lease was lost, or the service is shutting down.
   */
  async function drain(
    kind: keyof RetentionReport, report: RetentionReport, batch: () => Promise<number>, watermark: () => Watermark,
  ) {
    for (let batches = 1; ; batches++) {
      const n = await batch()
      report[kind] += n
      // stop(): a run in progress ends after its current batch.
      if (!(await checkpoint(watermark())) || loop.stopping) return false
      if (batches % 20 === 0) log.info({ kind, deleted: report[kind], batches }, 'retention: in progress')
      if (n < BATCH) return true
    }
  }

  /** One run if due: what it deleted, or undefined when not due or held by another instance. */
  async function runOnce(): Promise<RetentionReport | undefined> {
    const claimed = await claim()
    if (!claimed) return undefined
    const report: RetentionReport = { abandoned: 0, failed: 0, finished: 0, history: 0, jobs: 0, deadJobs: 0, webhooks: 0 }
    let finished = claimed.finished
    const mark = () => finished
    const started = Date.now()
    const abandoned = () => deleteEnded(sql, ['ConsentAbandoned'], ago(config.abandonedMs))
    const failed = () => deleteEnded(sql, FAILED, ago(config.failedMs))
    const steps: [number, () => Promise<boolean>][] = [
      [config.abandonedMs, () => drain('abandoned', report, abandoned, mark)],
      [config.failedMs, () => drain('failed', report, failed, mark)],
      [config.historyMs, () => drain('finished', report, async () => {
        const r = await pruneFinished(sql, ago(config.historyMs), finished)
        report.history += r.history
        report.jobs += r.jobs
        finished = r.next
        return r.workflows
      }, mark)],
      // Dead jobs are kept as long as history, for admins to see, then go: a gauge that can fall back to 0.
      [config.historyMs, () => drain('deadJobs', report, () => pruneDeadJobs(sql, ago(config.historyMs)), mark)],
      [config.webhooksMs, () => drain('webhooks', report, () => pruneWebhooks(sql, ago(config.webhooksMs)), mark)],
    ]
    for (const [age, step] of steps) {
      if (age > 0 && !(await step())) {
        if (loop.stopping) {
          // Handed back at once, still due: the next instance to look resumes from the checkpoint.
          await sql`update wix_install.maintenance set ${lease.release()} where name = ${NAME} and ${lease.heldBy(owner)}`
          log.info({ report }, 'retention: paused for shutdown')
        } else log.warn({ report }, 'retention: lease lost to another instance; it carries on')
        return report
      }
    }
    const at = now()
    await sql`
      update wix_install.maintenance
      set ${lease.release()}, next_run_at = ${new Date(at.getTime() + config.intervalMs)},
        last_run = ${sql.json({ ...report, at: at.toISOString(), ms: Date.now() - started } as never)}
      where name = ${NAME} and ${lease.heldBy(owner)}`
    log.info({ ...report, ms: Date.now() - started }, 'retention: run complete')
    return report
  }

  /** Checks once a minute at most whether a run is due: two cheap statements when it is not. */
  const loop = periodically(runOnce, {
    intervalMs: Math.min(config.intervalMs, 60_000),
    firstDelayMs: 0,
    onError: (err) => log.warn({ err: toSafeError(err) }, 'retention: run failed; the next one resumes'),
  })

  return { owner, runOnce, start: loop.start, stop: loop.stop }
}

export type Retention = ReturnType<typeof createRetention>
