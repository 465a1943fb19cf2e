export const persist = (snapshot) => ({
    value: snapshot.value,
    context: snapshot.context,
    status: snapshot.status,
    ...(snapshot.output !== undefined && { output: snapshot.output }),
});
/** Children are not restored: the engine runs effects itself, from the jobs table. */
export const restore = (machine, state) => machine.resolveState({ value: state.value, context: state.context, output: state.output });
/** The top-level state: `{ SetupIncomplete: 'waiting' }` → `SetupIncomplete`. */
export const stateName = (value) => typeof value === 'string' ? value : Object.keys(value)[0];
/** The full path: `{ SetupIncomplete: 'waiting' }` → `SetupIncomplete.waiting`. */
export const statePath = (value) => typeof value === 'string'
    ? value
    : Object.entries(value)
        .map(([k, v]) => (v && (typeof v === 'string' || Object.keys(v).length) ? `${k}.${statePath(v)}` : k))
        .join(',');
export function planEffects(next, actions) {
    const plan = { effects: [], timers: [], cancelledTimers: [], activeInvokes: [] };
    for (const action of actions) {
        const p = (action.params ?? {});
        if (action.type === 'xstate.spawnChild') {
            if (typeof p.src !== 'string')
                throw new Error(`invoke ${String(p.id)} must name an actor registered in setup()`);
            plan.effects.push({ name: String(p.id), src: p.src, input: p.input });
        }
        else if (action.type === 'xstate.raise' && typeof p.delay === 'number') {
            plan.timers.push({ name: String(p.id), event: p.event, delayMs: p.delay });
        }
        else if (action.type === 'xstate.cancel') {
            plan.cancelledTimers.push(String(p.sendId));
        }
    }
    const nodes = next._nodes;
    plan.activeInvokes = nodes.flatMap((node) => node.invoke.map((invoke) => invoke.id));
    return plan;
}
/** A machine's definition as plain JSON (implementations dropped), for visualisers. */
export const definitionJson = (machine) => JSON.parse(JSON.stringify(machine.definition, (_key, value) => (typeof value === 'function' ? undefined : value)));
