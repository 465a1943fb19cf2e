import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod'
import { SANDBOX_PREFIX } from '../config.ts'

/** The document's groups, in reading order: what Wix calls, what admins call, what operators watch. */
const TAGS = [
  { name: 'Wix', description: 'What Wix and the browser call during an installation, and Wix\'s webhooks' },
  {
    name: 'admin API',
    description: 'Installations for admins and the app\'s backend: `Authorization: Bearer <ADMIN_TOKEN>`',
  },
  { name: 'operations', description: 'Health and metrics, open to the platform that runs the service' },
]
const SANDBOX_TAG = { name: 'sandbox', description: 'The built-in fake Wix (sandbox mode only)' }

function tagOf(url: string) {
  if (url.startsWith('/wix')) return 'Wix'
  if (url.startsWith('/api')) return 'admin API'
  return url.startsWith(SANDBOX_PREFIX) ? SANDBOX_TAG.name : 'operations'
}

/**
 * The OpenAPI document at /docs/json and a browsable UI at /docs, generated from the same zod
 * schemas that validate each route. The UI's assets are served from node_modules: no CDN.
 * Must be registered before the routes it describes.
 */
export default fp(
  async (app) => {
    await app.register(swagger, {
      openapi: {
        info: {
          title: 'wix-install-engine',
          description: 'Wix app installations as durable state machines. Every /api route needs `Authorization: Bearer <ADMIN_TOKEN>`.',
          version: '0.1.0',
        },
        servers: [{ url: app.config.publicUrl }],
        components: { securitySchemes: { admin: { type: 'http', scheme: 'bearer' } } },
        tags: app.config.sandbox ? [...TAGS, SANDBOX_TAG] : TAGS,
      },
      transform: (input) => {
        const out = jsonSchemaTransform(input)
        // Routes without a schema (the fake Wix's) are documented too: they get one to hold their tag.
        const schema = (out.schema ??= {}) as Record<string, unknown>
        // Mark the admin routes as needing the bearer token.
        if (input.url.startsWith('/api')) schema.security = [{ admin: [] }]
        schema.tags ??= [tagOf(input.url)]
        return out
      },
      transformObject: jsonSchemaTransformObject,
    })
    await app.register(swaggerUi, { routePrefix: '/docs' })
  },
  { name: 'openapi', dependencies: ['config'] },
)
