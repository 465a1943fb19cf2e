import fp from 'fastify-plugin';
import { Errors } from "../errors.js";
/** Routes that answer about the database themselves, or need none. */
const EXEMPT = ['/healthz', '/metrics', '/docs'];
/**
 * Once a query finds Postgres gone, every request that would need it gets a 503 at once instead
 * of queueing behind connection attempts; a probe each second notices when it is back.
 */
export default fp(async (app) => {
    let probe;
    const check = async () => {
        try {
            await Promise.race([
                app.sql `select 1`,
                new Promise((_, reject) => setTimeout(() => reject(new Error('probe timed out')), 2_000).unref()),
            ]);
            clearInterval(probe);
            probe = undefined;
            app.log.info('database reachable again');
        }
        catch {
            // still down: the next probe tries again
        }
    };
    app.decorate('databaseDown', () => {
        if (probe)
            return;
        app.log.warn('database unavailable: answering 503 until it is back');
        probe = setInterval(check, 1_000);
        probe.unref();
    });
    app.addHook('onRequest', async (request, reply) => {
        if (!probe || EXEMPT.some((prefix) => request.url.startsWith(prefix)))
            return;
        reply.header('retry-after', '5');
        throw new Errors.DATABASE_UNAVAILABLE();
    });
    app.addHook('onClose', async () => clearInterval(probe));
}, { name: 'database-breaker', dependencies: ['database'] });
