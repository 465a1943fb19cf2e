import fp from 'fastify-plugin';
import { connect, isDatabaseUnavailable } from "../db/connect.js";
import { migrate } from "../db/migrate.js";
/** How long a starting instance waits for its database before giving up. */
const STARTUP_WAIT_MS = 60_000;
/** An instance that starts while Postgres restarts waits for it instead of crashing. */
async function migrateWhenReachable(sql, log) {
    const giveUpAt = Date.now() + STARTUP_WAIT_MS;
    for (let attempt = 1;; attempt++) {
        try {
            return await migrate(sql, log);
        }
        catch (err) {
            if (!isDatabaseUnavailable(err) || Date.now() > giveUpAt)
                throw err;
            log.warn({ attempt, code: err.code }, 'database unreachable at start; waiting for it');
            await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** attempt)));
        }
    }
}
/** The Postgres client, migrated before anything uses it; closed with the app if we opened it. */
export default fp(async (app, opts) => {
    if (!opts.sql && !opts.url)
        throw new Error('database plugin needs `sql` or `url`');
    const sql = opts.sql ?? connect(opts.url, { max: opts.max });
    if (!opts.sql)
        app.addHook('onClose', async () => sql.end({ timeout: 5 }));
    if (opts.migrate !== false)
        await migrateWhenReachable(sql, app.log);
    app.decorate('sql', sql);
}, { name: 'database' });
