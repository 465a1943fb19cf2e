import { randomUUID } from 'node:crypto';
import { initialTransition, transition } from 'xstate';
import { machineVersionUnsupported, unknownMachine, workflowNotFound, writeContention } from "./errors.js";
import { redactEvent } from "./redact.js";
import { persist, planEffects, restore, stateName, statePath } from "./snapshot.js";
import * as store from "./store.js";
const MAX_WRITE_TRIES = 25;
/**
 * How many workflows' last rows a process keeps to skip the read before a write. A flow's
 * events come close together, so the few hundred flows in flight are what matters; a miss
 * costs one read, while every row kept costs memory for as long as the process lives.
 */
const RECENT_ROWS = 1_000;
/** A stored row as callers see it. */
export const toWorkflow = (row) => ({
    id: row.id,
    machine: row.machine,
    machineVersion: row.machine_version,
    key: row.key,
    state: row.state,
    statePath: statePath(row.snapshot.value),
    reason: row.reason,
    status: row.snapshot.status,
    context: row.snapshot.context,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
});
export function createEngineCore(opts) {
    const { sql, sealer, log } = opts;
    const owner = opts.owner ?? `${randomUUID().slice(0, 8)}`;
    const now = opts.now ?? (() => new Date());
    const leaseMs = opts.leaseMs ?? 60_000;
    const definitions = new Map(opts.definitions.map((d) => [d.name, d]));
    const listeners = new Set();
    /** Rows this process wrote or read last, newest last; bounded. See `send`. */
    const recent = new Map();
    const remember = (row) => {
        const { job_status: _ignored, ...plain } = row;
        recent.delete(row.id);
        recent.set(row.id, plain);
        if (recent.size > RECENT_ROWS)
            recent.delete(recent.keys().next().value);
    };
    // Set by the job runner: receives effect jobs this process leased to itself.
    let runLocal = () => { };
    const definition = (name) => {
        const d = definitions.get(name);
        if (!d)
            throw unknownMachine(name);
        return d;
    };
    /** A stored snapshot as a live one, migrated if an older machine wrote it. */
    const load = (def, row) => {
        let state = row.snapshot;
        if (row.machine_version !== def.version) {
            if (!def.migrate || row.machine_version > def.version) {
                throw machineVersionUnsupported(def.name, row.machine_version, def.version);
            }
            state = def.migrate(state, row.machine_version);
        }
        return restore(def.machine, state);
    };
    /** Jobs for a plan; effects are leased to this process so it can run them at once. */
    const jobsFor = (workflowId, machine, plan, at) => {
        const local = [];
        const rows = [];
        for (const effect of plan.effects) {
            const id = randomUUID();
            local.push({ id, workflowId, machine, kind: 'effect', name: effect.name, src: effect.src, input: effect.input, attempts: 1 });
            rows.push({
                id, kind: 'effect', name: effect.name, src: effect.src,
                payload: sealer.seal(JSON.stringify(effect.input ?? null)), event: null,
                status: 'running', attempts: 1, run_at: at, lease_owner: owner, lease_until: new Date(at.getTime() + leaseMs),
            });
        }
        for (const timer of plan.timers) {
            rows.push({
                id: randomUUID(), kind: 'timer', name: timer.name, src: null, payload: null, event: timer.event,
                status: 'pending', attempts: 0, run_at: new Date(at.getTime() + timer.delayMs), lease_owner: null, lease_until: null,
            });
        }
        return { local, rows };
    };
    const committed = (workflow, local, steps) => {
        for (const listener of listeners)
            listener(workflow, steps);
        if (local.length)
            runLocal(local);
    };
    /**
     * Starts a workflow and applies `events` to it, all in one write: the app-url route creates an
     * installation and sends it to the installer in a single round trip.
     */
    async function create(machine, input, o) {
        const def = definition(machine);
        const id = input.id ?? randomUUID();
        const at = now();
        let [snapshot, actions] = initialTransition(def.machine, { ...input, id });
        const history = [
            { seq: 1, event_type: 'xstate.init', event: { type: 'xstate.init' }, from_state: null, to_state: statePath(snapshot.value), source: o.source },
        ];
        const allActions = [...actions];
        for (const event of o.events ?? []) {
            if (!snapshot.can(event))
                throw new Error(`${machine}: ${event.type} is not accepted right after start`);
            const from = statePath(snapshot.value);
            [snapshot, actions] = transition(def.machine, snapshot, event);
            allActions.push(...actions);
            history.push({ seq: history.length + 1, event_type: event.type, event: redactEvent(event), from_state: from, to_state: statePath(snapshot.value), source: o.source });
        }
        // Nothing is stored yet, so only what is still set after the last step counts: a timer
        // cancelled after it was set is dropped, one set again after a cancel is kept.
        const plan = planEffects(snapshot, allActions);
        const live = new Map();
        for (const action of allActions) {
            const p = (action.params ?? {});
            if (action.type === 'xstate.cancel')
                live.delete(String(p.sendId));
            const timer = plan.timers.find((t) => t.name === p.id);
            if (action.type === 'xstate.raise' && timer)
                live.set(timer.name, timer);
        }
        plan.timers = [...live.values()];
        plan.effects = plan.effects.filter((e) => plan.activeInvokes.includes(e.name));
        const state = persist(snapshot);
        const { local, rows } = jobsFor(id, machine, plan, at);
        const row = {
            id, machine, machine_version: def.version, ...def.project(state), state: stateName(state.value),
            snapshot: state, version: history.length, created_at: at, updated_at: at,
        };
        await store.insertWorkflow(sql, { ...row, now: at }, history, rows);
        remember(row);
        const workflow = toWorkflow(row);
        log.info({ workflowId: id, machine, state: workflow.statePath, source: o.source }, 'workflow created');
        committed(workflow, local, history.map((h) => ({ event: h.event_type, from: h.from_state, to: h.to_state, data: h.event })));
        return workflow;
    }
    /** Applies one event: fenced read, pure transition, one write; retried when a writer races us. */
    async function send(id, event, o) {
        // This process's last view of the row saves the read on the hot path. It may be stale: the
        // write is fenced by version (and by the job still being live), so a stale view only costs
        // a write that matches nothing, after which we read and decide again. Nothing is rejected on
        // a cached view alone.
        let row = recent.get(id);
        let fresh = false;
        for (let tries = 0; tries < MAX_WRITE_TRIES; tries++) {
            if (!row) {
                row = await store.readWorkflow(sql, id, o.job?.id);
                if (!row)
                    throw workflowNotFound(id);
                fresh = true;
            }
            if (o.machine !== undefined && row.machine !== o.machine)
                throw workflowNotFound(id);
            const def = definition(row.machine);
            const current = toWorkflow(row);
            const stale = fresh && o.job && row.job_status !== 'running' && row.job_status !== 'pending';
            const snapshot = load(def, row);
            // A workflow that reached a final state takes no more events, whatever the machine says.
            if (stale || snapshot.status !== 'active' || !snapshot.can(event)) {
                if (!fresh) {
                    row = undefined;
                    continue;
                }
                log.warn({ workflowId: id, event: event.type, state: current.statePath, source: o.source, staleJob: stale || undefined }, 'event rejected');
                if (o.job && !stale)
                    await store.discardJob(sql, o.job.id, now());
                return { accepted: false, workflow: current };
            }
            const [next, actions] = transition(def.machine, snapshot, event);
            const redacted = redactEvent(event);
            const at = now();
            const plan = planEffects(next, actions);
            const state = persist(next);
            const { local, rows } = jobsFor(id, row.machine, plan, at);
            const projected = def.project(state);
            const written = {
                id, version: row.version, machineVersion: row.machine_version, writtenMachineVersion: def.version, state: stateName(state.value), ...projected, snapshot: state,
                eventType: event.type, event: redacted, from: current.statePath, to: statePath(state.value),
                source: o.source, now: at, jobs: rows, activeInvokes: plan.activeInvokes,
                respawned: plan.effects.map((e) => e.name), cancelledTimers: plan.cancelledTimers, job: o.job,
            };
            if (!(await store.commitTransition(sql, written))) {
                // Another writer moved the row on (or our view was old); decide again on what it wrote.
                recent.delete(id);
                row = undefined;
                if (fresh)
                    await new Promise((r) => setTimeout(r, Math.random() * 5 * (tries + 1)));
                continue;
            }
            remember({ ...row, machine_version: def.version, state: written.state, key: projected.key, reason: projected.reason, snapshot: state, version: row.version + 1, updated_at: at });
            const workflow = {
                ...current, ...projected, state: stateName(state.value), statePath: statePath(state.value),
                status: state.status, context: state.context, version: row.version + 1, updatedAt: at,
            };
            log.info({ workflowId: id, event: event.type, from: current.statePath, to: workflow.statePath, source: o.source }, 'transition');
            committed(workflow, local, [{ event: event.type, from: current.statePath, to: workflow.statePath, data: redacted }]);
            return { accepted: true, workflow };
        }
        throw writeContention(id);
    }
    async function get(id) {
        const row = await store.readWorkflow(sql, id);
        if (row)
            remember(row);
        return row && toWorkflow(row);
    }
    /**
     * Resolves once `done(workflow)` holds, or with the latest workflow after `timeoutMs`.
     * Local commits wake it at once; polling covers work finished by another process.
     */
    async function waitFor(id, done, timeoutMs, pollMs = 250) {
        // A caller usually waits right after its own send, for an effect this process runs: its
        // commit wakes us, so this process's last view saves a read. Another process's progress
        // shows at the first poll.
        const known = recent.get(id);
        let latest = known ? toWorkflow(known) : await get(id);
        if (!latest || done(latest))
            return latest;
        return new Promise((resolve) => {
            let settled = false;
            const finish = (w) => {
                if (settled)
                    return;
                settled = true;
                listeners.delete(onLocal);
                clearTimeout(deadline);
                clearInterval(poll);
                resolve(w);
            };
            const onLocal = (w) => {
                if (w.id !== id)
                    return;
                latest = w;
                if (done(w))
                    finish(w);
            };
            listeners.add(onLocal);
            const deadline = setTimeout(() => finish(latest), timeoutMs);
            const poll = setInterval(async () => {
                const w = await get(id).catch(() => undefined);
                if (w && w.version >= (latest?.version ?? 0))
                    latest = w;
                if (w && done(w))
                    finish(w);
            }, pollMs);
        });
    }
    return {
        owner, now, leaseMs, log, sql, sealer,
        definition, create, send, get, waitFor,
        history: (id) => store.readHistory(sql, id),
        /** `listener(workflow, steps)` after every committed create/send in this process. */
        onTransition(listener) {
            listeners.add(listener);
            return () => listeners.delete(listener);
        },
        setLocalRunner(fn) {
            runLocal = fn;
        },
    };
}
