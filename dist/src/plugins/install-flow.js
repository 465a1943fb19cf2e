import fp from 'fastify-plugin';
import { createInstallFlow } from "../installation/flow.js";
export default fp(async (app) => {
    app.decorate('installFlow', createInstallFlow({ engine: app.engine, config: app.config, vault: app.vault }));
}, { name: 'install-flow', dependencies: ['engine'] });
