import fp from 'fastify-plugin';
export default fp(async (app, opts) => {
    app.decorate('config', opts.config);
    app.decorate('now', opts.now ?? (() => new Date()));
}, { name: 'config' });
