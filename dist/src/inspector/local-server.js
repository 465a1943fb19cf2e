import { createServer } from 'node:net';
import { createInspectorServer } from '@statelyai/inspect/server';
/** Where the Stately inspector's local server (`createInspectorServer`) listens by default. */
export const LOCAL_INSPECTOR_PORT = 8080;
export const localInspectorUrl = (port = LOCAL_INSPECTOR_PORT) => `ws://localhost:${port}`;
/**
 * Starts the Stately inspector's local server (a bridge page at http://localhost:<port> and the
 * WebSocket the inspectors send to), or resolves undefined when the port is taken — most likely
 * by one already running. The library's server has no error handler: a taken port would be an
 * uncaught exception, so the port is tried first.
 */
export async function startLocalInspector(port = LOCAL_INSPECTOR_PORT) {
    const free = await new Promise((resolve) => {
        const probe = createServer();
        probe.once('error', () => resolve(false));
        // Bound like the library binds: every interface, the port alone.
        probe.listen(port, () => probe.close(() => resolve(true)));
    });
    return free ? createInspectorServer({ port, autoOpen: false }) : undefined;
}
