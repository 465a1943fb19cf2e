import { readdir, readFile } from 'node:fs/promises';
const MIGRATIONS_DIR = new URL('../../migrations/', import.meta.url);
/** Any constant works: it only has to be the same in every process of this service. */
const MIGRATION_LOCK = 7_406_151_001;
export async function loadMigrations() {
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d+-.+\.sql$/.test(f)).sort();
    return Promise.all(files.map(async (name) => ({
        id: Number.parseInt(name, 10),
        name,
        sql: await readFile(new URL(name, MIGRATIONS_DIR), 'utf8'),
    })));
}
/**
 * Applies pending migrations, forward only, each in its own transaction under an advisory lock,
 * so instances starting together apply each exactly once. Refuses a schema newer than this code.
 */
export async function migrate(sql, log) {
    const migrations = await loadMigrations();
    const known = migrations.at(-1)?.id ?? 0;
    await sql `create table if not exists schema_migrations (
    id integer primary key, name text not null, applied_at timestamptz not null default now())`;
    const applied = [];
    for (const m of migrations) {
        await sql.begin(async (tx) => {
            await tx `select pg_advisory_xact_lock(${MIGRATION_LOCK})`;
            const [{ newest }] = await tx `select max(id) as newest from schema_migrations`;
            if ((newest ?? 0) > known) {
                throw new Error(`database schema is at migration ${newest}, newer than this code knows (${known}); deploy the newer code`);
            }
            const [done] = await tx `select 1 from schema_migrations where id = ${m.id}`;
            if (done)
                return;
            await tx.unsafe(m.sql);
            await tx `insert into schema_migrations (id, name) values (${m.id}, ${m.name})`;
            applied.push(m.id);
            log?.info({ migration: m.name }, 'migration applied');
        });
    }
    return applied;
}
