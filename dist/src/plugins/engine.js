import fp from 'fastify-plugin';
import { createTokenCipher } from "../crypto/token-cipher.js";
import { createEngine } from "../engine/index.js";
import { createTokenVault } from "../installation/token-vault.js";
import { installationWorkflow } from "../installation/workflow.js";
/** The durable engine running the installation workflow, and the token vault its effects use. */
export default fp(async (app, opts) => {
    const cipher = createTokenCipher(app.config.tokenKeys);
    const vault = createTokenVault({ sql: app.sql, cipher, wix: app.wix, now: app.now });
    const engine = createEngine({
        sql: app.sql,
        definitions: [installationWorkflow({ wix: app.wix, vault, now: app.now })],
        sealer: { seal: cipher.encrypt, open: cipher.decrypt },
        log: app.log,
        now: app.now,
        owner: opts.owner,
        leaseMs: opts.leaseMs ?? app.config.jobLeaseMs,
        pollMs: opts.pollMs,
    });
    app.decorate('engine', engine);
    app.decorate('vault', vault);
    if (opts.poll !== false)
        app.addHook('onReady', async () => engine.runner.start());
    // preClose runs before every onClose hook, so jobs finish while the database is still open.
    app.addHook('preClose', async () => engine.runner.stop(app.config.shutdownGraceMs));
}, { name: 'engine', dependencies: ['config', 'database', 'wix-client'] });
