// A team's own Fastify app, in plain JavaScript, with the install flow registered inside it.
// Copied into an empty project that installed the package's tarball beside fastify@5 (see
// test/support/user-app.ts); run there by node, or by deno with --node-modules-dir=manual.
import Fastify from 'fastify'
import wixInstallEngine, { optionsFromEnv } from 'wix-install-engine/fastify'

// The pluginTimeout docs/library.md recommends: the embedded Postgres's very first start, on a busy machine, takes
// longer than Fastify's default 10 s.
const app = Fastify({ logger: { level: 'warn' }, pluginTimeout: 120_000 })
app.addHook('onRequest', async (_request, reply) => {
  reply.header('x-user-app', 'yes')
})
app.setErrorHandler((err, _request, reply) => reply.code(418).send({ mine: true, message: err.message }))
app.get('/hello', async () => ({ hello: 'world' }))
app.get('/boom', async () => {
  throw new Error('the app broke')
})

await app.register(wixInstallEngine, optionsFromEnv(process.env))
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
console.log(`listening with ${Object.keys(await import('wix-install-engine')).sort().join(',')}`)

process.once('SIGTERM', async () => {
  await app.close()
  console.log('closed')
  process.exit(0)
})
