/**
 * `wix-install-engine/fastify`: the whole service as a Fastify plugin for an app's own server.
 *
 *   await app.register(wixInstallEngine, optionsFromEnv(process.env))
 */
import type { FastifyPluginAsync } from 'fastify'
import { wixInstallEngine } from './app.ts'
import type { WixInstallOptions } from './options.ts'

export { ConfigError } from './config.ts'
export { optionsFromEnv, configFromOptions, type WixInstallOptions } from './options.ts'

const plugin: FastifyPluginAsync<WixInstallOptions> = wixInstallEngine
export default plugin
