import { createInspector } from '@statelyai/inspect';
import { REDACTED, redactEvent } from "../engine/redact.js";
import { createSocketAdapter } from "./socket-adapter.js";
/**
 * Keys whose values would be credentials, at any depth. Contexts and stored events hold none by
 * design (`redactEvent` already ran on every event); this is the inspector's own guard.
 * `code`/`state` only as whole keys: `codeTtlMs` and `stateHash` are no secrets.
 */
const SECRET_KEY = /^(code|state)$|secret|token|password|authori[sz]ation|cookie|credential/i;
export function stripSecrets(value, depth = 0) {
    if (depth > 20 || value === null || typeof value !== 'object')
        return value;
    if (Array.isArray(value))
        return value.map((v) => stripSecrets(v, depth + 1));
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) && v != null ? REDACTED : stripSecrets(v, depth + 1)]));
}
/** `SetupIncomplete.finishing` → `{ SetupIncomplete: 'finishing' }`, as the inspector draws it. */
export function valueOf(path) {
    const [head, ...rest] = path.split('.');
    return rest.length ? { [head]: valueOf(rest.join('.')) } : head;
}
/** One inspector actor per workflow, named after it, the same in every process and in replays. */
export const actorId = (w) => `${w.machine}:${w.id}`;
/**
 * Sends engine transitions to the Stately inspector over its WebSocket protocol: each workflow is
 * announced once (`@xstate.actor`, with its machine), then every step is an `@xstate.event` and
 * the `@xstate.snapshot` after it. Events go as history stores them; secrets are stripped again.
 */
export function createWorkflowInspector(url, o = {}) {
    const adapter = createSocketAdapter({ ...o, url });
    const inspector = createInspector(adapter, {
        sanitizeEvent: (event) => stripSecrets(redactEvent(event)),
        sanitizeContext: (context) => stripSecrets(context),
    });
    inspector.start();
    const announced = new Set();
    const machineOf = (name) => {
        try {
            return o.machine?.(name);
        }
        catch {
            return undefined;
        }
    };
    return {
        url,
        /** Sends the steps of one committed transition, announcing the workflow the first time. */
        record(workflow, steps) {
            const id = actorId(workflow);
            const context = stripSecrets(workflow.context);
            if (!announced.has(id)) {
                // Bounded: an actor seen again after a clear is announced again, which the inspector merges.
                if (announced.size >= 10_000)
                    announced.clear();
                announced.add(id);
                const first = steps[0];
                const machine = machineOf(workflow.machine);
                // The library reads the definition off `actorRef.logic.config`, as XState's own actors send it.
                const ref = (machine ? { sessionId: id, logic: machine } : id);
                inspector.actor(ref, { value: valueOf(first?.from ?? first?.to ?? ''), context, status: 'active' });
            }
            steps.forEach((step, i) => {
                const event = { ...step.data, type: step.event };
                inspector.event(id, event);
                const last = i === steps.length - 1;
                inspector.snapshot(id, { value: valueOf(step.to), context, status: last ? workflow.status : 'active' }, { event });
            });
        },
        whenOpen: adapter.whenOpen,
        dropped: adapter.dropped,
        stop: adapter.stop,
    };
}
