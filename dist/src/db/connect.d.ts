import postgres from 'postgres';
/** Postgres error codes we act on. */
export declare const PG: {
    /** unique_violation */
    readonly UNIQUE_VIOLATION: "23505";
    /** admin_shutdown: the server is restarting */
    readonly ADMIN_SHUTDOWN: "57P01";
    /** crash_shutdown */
    readonly CRASH_SHUTDOWN: "57P02";
    /** cannot_connect_now: the server is starting up */
    readonly CANNOT_CONNECT_NOW: "57P03";
};
export declare const isDatabaseUnavailable: (err: unknown) => boolean;
export interface ConnectOptions {
    /** PGlite serves one session: the embedded database needs exactly one connection. */
    max?: number;
}
export declare function connect(url: string, opts?: ConnectOptions): postgres.Sql<{}>;
