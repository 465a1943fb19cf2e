import fastJson from 'fast-json-stringify'
import type { FastifySerializerCompiler } from 'fastify/types/schema.js'
import { serializerCompiler as zodSerializerCompiler } from 'fastify-type-provider-zod'
import { z } from 'zod'

type JsonSchema = { [key: string]: unknown }
type RouteSchema = z.ZodType | { properties: z.ZodType }

/**
 * Replies written as Fastify writes its own: each route's zod response schema is turned into JSON
 * Schema once, at start, and compiled by fast-json-stringify. An installation reply takes 1–1.5 µs
 * instead of the zod serialiser's 6–8 (a safe-encode, then JSON.stringify); a list page of 200
 * installations ~0.2 ms instead of ~0.85. Like the zod serialiser, it writes the schema's
 * properties and nothing else: a field a handler adds that the schema lacks (a token, say) is
 * never sent. It does not check the values themselves (a handler's types do); a schema JSON
 * Schema cannot state keeps the zod serialiser.
 */
export const responseSerializerCompiler: FastifySerializerCompiler<RouteSchema> = (route) => {
  const json = jsonSchemaOf(route.schema)
  return json ? fastJson(json) : zodSerializerCompiler(route)
}

/** The schema as fast-json-stringify should read it, or undefined where it cannot. */
function jsonSchemaOf(schema: RouteSchema): JsonSchema | undefined {
  const zod = schema instanceof z.ZodType ? schema : schema.properties
  if (!(zod instanceof z.ZodType)) return undefined
  try {
    return forFastJson(z.toJSONSchema(zod, {
      io: 'output', target: 'draft-7', cycles: 'throw', reused: 'inline',
      // A Date goes out as JSON.stringify writes it, its ISO string (fast-json-stringify's date-time).
      unrepresentable: ({ zodSchema }) => (zodSchema._zod.def.type === 'date' ? { type: 'string', format: 'date-time' } : 'throw'),
    }) as JsonSchema)
  } catch {
    return undefined
  }
}

/**
 * Two readings where fast-json-stringify and zod part: `additionalProperties: false` would make
 * it refuse, in a branch of a union, an object with a field more (zod drops it, and so does
 * fast-json-stringify without the keyword: it writes declared properties only); and `X or null`
 * is its `nullable`, which needs no validator at run time to pick a branch.
 */
function forFastJson(node: unknown): JsonSchema {
  if (Array.isArray(node)) return node.map(forFastJson) as never
  if (node === null || typeof node !== 'object') return node as never
  const out: JsonSchema = {}
  for (const [key, value] of Object.entries(node)) {
    if (key === 'additionalProperties' && value === false) continue
    out[key] = forFastJson(value)
  }
  const anyOf = out.anyOf as JsonSchema[] | undefined
  if (anyOf?.length === 2 && anyOf.some(isNull)) {
    const { anyOf: _, ...rest } = out
    return { ...rest, ...anyOf.find((s) => !isNull(s)), nullable: true }
  }
  return out
}

const isNull = (s: JsonSchema) => s.type === 'null' && Object.keys(s).length === 1
