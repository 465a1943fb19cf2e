import fp from 'fastify-plugin';
import { createWixClient } from "../wix/client.js";
/** The Wix API client, with its connection pool closed on shutdown. */
export default fp(async (app) => {
    const { wix } = app.config;
    // Read at call time: the metrics plugin, when registered, comes after this one.
    const client = createWixClient({
        apiUrl: wix.apiUrl, appId: wix.appId, appSecret: wix.appSecret, log: app.log,
        onCall: (info) => app.metrics?.wixCall(info),
    });
    app.decorate('wix', client);
    app.addHook('onClose', async () => client.close());
}, { name: 'wix-client', dependencies: ['config'] });
