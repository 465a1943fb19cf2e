import fp from 'fastify-plugin';
import { createInstallationAdmin } from "../installation/admin.js";
export default fp(async (app) => {
    app.decorate('installations', createInstallationAdmin({ engine: app.engine, sql: app.sql, vault: app.vault, now: app.now }));
}, { name: 'installation-admin', dependencies: ['engine'] });
