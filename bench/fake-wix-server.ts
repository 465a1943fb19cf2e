import { startFakeWix } from '../src/sandbox/fake-wix.ts'

/** The fake Wix alone in its own process, so its CPU is not the engine's: `PORT`, `WIX_APP_ID`, `WIX_APP_SECRET`. */
const fake = await startFakeWix({
  appId: process.env.WIX_APP_ID ?? 'bench-app',
  appSecret: process.env.WIX_APP_SECRET ?? 'bench-secret',
  port: Number(process.env.PORT ?? 0),
})
console.log(fake.url)
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void fake.close().then(() => process.exit(0)))
}
