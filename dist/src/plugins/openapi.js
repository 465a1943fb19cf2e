import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
/**
 * The OpenAPI document at /docs/json and a browsable UI at /docs, generated from the same zod
 * schemas that validate each route. The UI's assets are served from node_modules: no CDN.
 * Must be registered before the routes it describes.
 */
export default fp(async (app) => {
    await app.register(swagger, {
        openapi: {
            info: {
                title: 'wix-install-engine',
                description: 'Wix app installations as durable state machines. Every /api route needs `Authorization: Bearer <ADMIN_TOKEN>`.',
                version: '0.1.0',
            },
            servers: [{ url: app.config.publicUrl }],
            components: { securitySchemes: { admin: { type: 'http', scheme: 'bearer' } } },
        },
        transform: (input) => {
            const out = jsonSchemaTransform(input);
            // Mark the admin routes as needing the bearer token.
            if (input.url.startsWith('/api'))
                out.schema.security = [{ admin: [] }];
            return out;
        },
        transformObject: jsonSchemaTransformObject,
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
}, { name: 'openapi', dependencies: ['config'] });
