export interface EmbeddedPostgres {
    url: string;
    close(): Promise<void>;
}
export interface EmbeddedOptions {
    dataDir: string;
    log?: {
        info(obj: object, msg?: string): void;
    };
}
/** Two PGlite instances writing one directory corrupt it; the second one must refuse to start. */
export declare class DataDirLockedError extends Error {
    readonly dataDir: string;
    readonly pid?: number | undefined;
    code: string;
    constructor(dataDir: string, pid?: number | undefined);
}
/** PGlite (Postgres in WASM) under `dataDir`, served on a loopback port for the `postgres` driver. */
export declare function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedPostgres>;
