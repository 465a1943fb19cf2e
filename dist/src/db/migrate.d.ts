import type { Sql } from 'postgres';
export interface Migration {
    id: number;
    name: string;
    sql: string;
}
export declare function loadMigrations(): Promise<Migration[]>;
/**
 * Applies pending migrations, forward only, each in its own transaction under an advisory lock,
 * so instances starting together apply each exactly once. Refuses a schema newer than this code.
 */
export declare function migrate(sql: Sql, log?: {
    info(obj: object, msg?: string): void;
}): Promise<number[]>;
