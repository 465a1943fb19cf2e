/** Where the Stately inspector's local server (`createInspectorServer`) listens by default. */
export declare const LOCAL_INSPECTOR_PORT = 8080;
export declare const localInspectorUrl: (port?: number) => string;
/**
 * Starts the Stately inspector's local server (a bridge page at http://localhost:<port> and the
 * WebSocket the inspectors send to), or resolves undefined when the port is taken — most likely
 * by one already running. The library's server has no error handler: a taken port would be an
 * uncaught exception, so the port is tried first.
 */
export declare function startLocalInspector(port?: number): Promise<{
    stop(): void;
} | undefined>;
