import { initialTransition, transition } from 'xstate';
import { installationMachine } from "../../machines/installation.js";
import { persist, statePath } from "../engine/snapshot.js";
import { findInstallationId } from "../installation/queries.js";
/**
 * An installation's stored history run again through the pure machine: the snapshot after each
 * event, recomputed, never read from a log. The events are stored redacted; the machine never
 * branches on the redacted values, so the replay ends where the installation is.
 */
export async function replayInstallation(sql, idOrInstanceId) {
    const id = await findInstallationId(sql, idOrInstanceId);
    const [row] = id ? await sql `select id, snapshot from workflows where id = ${id}` : [];
    if (!row)
        return undefined;
    const history = await sql `
    select seq, event, to_state from workflow_history where workflow_id = ${row.id} order by seq`;
    // The input is the initial context minus what the machine derives; the stored context has it all.
    const c = row.snapshot.context;
    const input = {
        id: c.id, origin: c.origin, stateHash: c.stateHash, closeWindow: c.closeWindow, autoFinish: c.autoFinish,
        consentTimeoutMs: c.consentTimeoutMs, codeTtlMs: c.codeTtlMs, browserReturnTimeoutMs: c.browserReturnTimeoutMs,
    };
    let [snapshot] = initialTransition(installationMachine, input);
    const init = history[0];
    const steps = [{
            seq: init?.seq ?? 1, event: { type: 'xstate.init' }, from: null, to: statePath(snapshot.value),
            storedTo: init?.to_state ?? statePath(snapshot.value), snapshot: persist(snapshot),
        }];
    for (const h of history.slice(1)) {
        const from = statePath(snapshot.value);
        [snapshot] = transition(installationMachine, snapshot, h.event);
        steps.push({ seq: h.seq, event: h.event, from, to: statePath(snapshot.value), storedTo: h.to_state, snapshot: persist(snapshot) });
    }
    return { id: row.id, machine: 'installation', steps };
}
