import { createActor, toPromise } from 'xstate';
import { isDatabaseUnavailable } from "../db/connect.js";
import { backoffDelay, defaultRetryPolicy } from "./backoff.js";
import { toSafeError } from "./errors.js";
import * as store from "./store.js";
class EffectTimeout extends Error {
    code = 'EFFECT_TIMEOUT';
    retryable = true;
}
class EffectInterrupted extends Error {
    code = 'EFFECT_INTERRUPTED';
    retryable = true;
}
/**
 * An effect's input as the machine gave it, plus which run this is: 1 right after the transition
 * that started it, more after a retry, a crash or a shutdown. A first run may skip checks for
 * work an earlier run left behind.
 */
const withAttempt = (input, attempt) => input && typeof input === 'object' && !Array.isArray(input) ? { ...input, attempt } : input;
async function runActor(logic, input, timeoutMs, running) {
    const actor = createActor(logic, { input });
    running.add(actor);
    const result = toPromise(actor);
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new EffectTimeout(`effect did not finish within ${timeoutMs} ms`)), timeoutMs);
    });
    actor.start();
    try {
        const output = await Promise.race([result, timeout]);
        // A stopped actor also "completes", with no output: only `done` is a success.
        if (actor.getSnapshot().status !== 'done')
            throw new EffectInterrupted('effect was stopped before it finished');
        return output;
    }
    finally {
        clearTimeout(timer);
        running.delete(actor);
        actor.stop(); // aborts the effect's `signal` if it is still running
    }
}
/**
 * Runs effects and fires timers. Jobs this process just committed run at once (the fast path);
 * the poll loop claims everything else that is due, including jobs whose runner died and whose
 * lease ran out, with `for update skip locked`, so any number of processes can share the queue.
 */
export function createJobRunner(core, opts = {}) {
    const pollMs = opts.pollMs ?? 1_000;
    const concurrency = opts.concurrency ?? 16;
    const inFlight = new Set();
    /** Effects running now, so a shutdown can abort the ones that outlive its grace period. */
    const runningActors = new Set();
    const observers = new Set();
    let stopping = false;
    let pollTimer;
    const wakeTimers = new Set();
    const policy = (machine) => ({ ...defaultRetryPolicy, ...core.definition(machine).retry });
    const report = (o) => observers.forEach((fn) => fn(o));
    async function runEffect(job) {
        const def = core.definition(job.machine);
        const logic = def.machine.implementations.actors[job.src];
        const started = core.now();
        const source = `effect:${job.name}`;
        const elapsed = () => core.now().getTime() - started.getTime();
        try {
            if (!logic)
                throw Object.assign(new Error(`no actor ${job.src} is registered`), { code: 'EFFECT_UNKNOWN', retryable: false });
            // An effect must end well inside its lease, or another instance could start it again.
            const timeoutMs = Math.min(opts.effectTimeoutMs ?? def.effectTimeoutMs ?? 30_000, core.leaseMs * 0.8);
            const output = await runActor(logic, withAttempt(job.input, job.attempts), timeoutMs, runningActors);
            const r = await core.send(job.workflowId, { type: `xstate.done.actor.${job.name}`, output }, {
                source, job: { id: job.id, attempt: { attempt: job.attempts, outcome: 'ok', started_at: started, error: null } },
            });
            report({ kind: 'effect', name: job.src, machine: job.machine, outcome: r.accepted ? 'ok' : 'rejected', durationMs: elapsed() });
        }
        catch (err) {
            if (stopping) {
                // Interrupted by shutdown: not an attempt that failed. stop() hands the lease back.
                core.log.info({ workflowId: job.workflowId, jobId: job.id, effect: job.src }, 'effect interrupted by shutdown');
                return;
            }
            const error = toSafeError(err);
            const retry = policy(job.machine);
            const log = { workflowId: job.workflowId, jobId: job.id, effect: job.src, attempt: job.attempts, error };
            if (error.retryable !== false && job.attempts < retry.maxAttempts) {
                const runAt = new Date(core.now().getTime() + backoffDelay(job.attempts, retry, error.retryAfterMs));
                core.log.warn({ ...log, retryAt: runAt }, 'effect failed; will retry');
                await store.retryJob(core.sql, job.id, core.owner, runAt, core.now(), {
                    attempt: job.attempts, outcome: 'retry', started_at: started, error,
                });
                wakeAt(runAt);
                report({ kind: 'effect', name: job.src, machine: job.machine, outcome: 'retry', durationMs: elapsed(), error });
                return;
            }
            core.log.warn(log, 'effect failed for good');
            await core.send(job.workflowId, { type: `xstate.error.actor.${job.name}`, error: { ...error, attempts: job.attempts } }, {
                source, job: { id: job.id, attempt: { attempt: job.attempts, outcome: 'failed', started_at: started, error } },
            });
            report({ kind: 'effect', name: job.src, machine: job.machine, outcome: 'failed', durationMs: elapsed(), error });
        }
    }
    async function fireTimer(job) {
        const started = core.now();
        const r = await core.send(job.workflowId, job.event, {
            source: 'timer', job: { id: job.id, attempt: { attempt: job.attempts, outcome: 'ok', started_at: started, error: null } },
        });
        report({ kind: 'timer', name: job.name, machine: job.machine, outcome: r.accepted ? 'ok' : 'rejected', durationMs: core.now().getTime() - started.getTime() });
    }
    function track(job) {
        const run = (job.kind === 'effect' ? runEffect(job) : fireTimer(job))
            .catch((err) => {
            // The lease stays: once it runs out, this job is claimed and run again.
            const level = isDatabaseUnavailable(err) ? 'warn' : 'error';
            core.log[level]({ workflowId: job.workflowId, jobId: job.id, err: toSafeError(err) }, 'job run failed; lease left to expire');
        })
            .finally(() => inFlight.delete(run));
        inFlight.add(run);
    }
    /** Claims due jobs up to the free capacity and starts them. Returns how many it claimed. */
    async function tick() {
        if (stopping)
            return 0;
        const free = concurrency - inFlight.size;
        if (free <= 0)
            return 0;
        const at = core.now();
        const rows = await store.claimJobs(core.sql, core.owner, at, new Date(at.getTime() + core.leaseMs), free);
        for (const row of rows) {
            const base = { id: row.id, workflowId: row.workflow_id, machine: row.machine, name: row.name, attempts: row.attempts };
            if (row.kind === 'timer')
                track({ ...base, kind: 'timer', event: row.event });
            else
                track({ ...base, kind: 'effect', src: row.src, input: JSON.parse(core.sealer.open(row.payload)) });
        }
        return rows.length;
    }
    /** A database outage is expected weather, not a bug: the next poll tries again. */
    function pollFailed(err) {
        if (isDatabaseUnavailable(err))
            core.log.warn({ err: toSafeError(err) }, 'job poll failed: database unavailable');
        else
            core.log.error({ err: toSafeError(err) }, 'job poll failed');
    }
    function wakeAt(at) {
        if (stopping)
            return;
        const timer = setTimeout(() => {
            wakeTimers.delete(timer);
            tick().catch(pollFailed);
        }, Math.max(0, at.getTime() - Date.now()) + 5);
        wakeTimers.add(timer);
    }
    function loop() {
        pollTimer = setTimeout(async () => {
            try {
                // Keep claiming while there is a backlog; otherwise wait for the next poll.
                while ((await tick()) > 0 && inFlight.size < concurrency)
                    ;
            }
            catch (err) {
                pollFailed(err);
            }
            if (!stopping)
                loop();
        }, pollMs);
    }
    core.setLocalRunner((jobs) => {
        for (const job of jobs) {
            if (stopping)
                return;
            track(job);
        }
    });
    return {
        tick,
        start() {
            stopping = false;
            loop();
        },
        /**
         * Lets running jobs finish within `graceMs`, aborts those that do not, then hands this
         * process's leases back so another instance takes them at once, not after the lease.
         */
        async stop(graceMs = 10_000) {
            stopping = true;
            clearTimeout(pollTimer);
            wakeTimers.forEach(clearTimeout);
            wakeTimers.clear();
            const settled = async (ms) => {
                let timer;
                await Promise.race([Promise.allSettled([...inFlight]), new Promise((r) => (timer = setTimeout(r, ms)))]);
                clearTimeout(timer);
            };
            await settled(graceMs);
            if (runningActors.size) {
                core.log.warn({ effects: runningActors.size }, 'shutdown grace over: aborting running effects');
                runningActors.forEach((actor) => actor.stop());
                await settled(1_000);
            }
            try {
                const released = await store.releaseLeases(core.sql, core.owner, core.now());
                if (released)
                    core.log.info({ released }, 'released job leases for other instances');
            }
            catch (err) {
                // Without the database the leases simply run out; other instances take the jobs then.
                core.log.warn({ err: toSafeError(err) }, 'could not release job leases');
            }
        },
        /** Resolves when nothing is running in this process (tests). */
        async idle() {
            while (inFlight.size)
                await Promise.allSettled([...inFlight]);
        },
        onOutcome(fn) {
            observers.add(fn);
            return () => observers.delete(fn);
        },
    };
}
