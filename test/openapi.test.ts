import t from 'tap'
import { freshDatabase } from './support/database.ts'
import { startService } from './support/service.ts'

/** /docs/json is a valid OpenAPI 3 document, generated from the route schemas, listing every route. */

const db = await freshDatabase()
t.teardown(db.drop)

t.test('the OpenAPI document and its UI', async (t) => {
  const service = await startService(t, { db })
  const doc = await service.api('GET', '/docs/json', { token: null })
  t.equal(doc.status, 200, '/docs/json answers without a token')
  t.match(doc.json.openapi, /^3\./, 'an OpenAPI 3 document')
  t.ok(doc.json.info?.title && doc.json.info?.version, 'with info')

  const documented = new Set(
    Object.entries(doc.json.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    ),
  )
  // The console's HTML pages are for people, not API clients: left out of the document.
  const routes = service.app.routeList.filter((r) => !r.url.startsWith('/docs') && r.url !== '/' && !r.url.startsWith('/_sandbox') && !r.url.startsWith('/console'))
  t.ok(routes.length >= 12, `the app has ${routes.length} routes to document`)
  for (const r of routes) t.ok(documented.has(`${r.method} ${r.url}`), `${r.method} ${r.url} is documented`)

  const list = doc.json.paths['/api/installations'].get
  t.ok(list.parameters.some((p: { name: string; in: string }) => p.name === 'cursor' && p.in === 'query'), 'the list documents its cursor parameter, from its zod schema')
  t.same(list.security, [{ admin: [] }], 'and that it needs the admin token')
  const one = doc.json.paths['/api/installations/{id}'].get
  t.ok(one.responses['200'].content['application/json'].schema, 'responses carry their schemas')
  t.ok(one.responses['404'], 'every 4xx included')

  t.same(doc.json.tags.map((tag: { name: string }) => tag.name), ['Wix', 'admin API', 'operations'], 'routes are grouped by tag, with no sandbox tag outside sandbox mode')
  t.same(doc.json.paths['/wix/redirect'].get.tags, ['Wix'], 'the Redirect URL is under Wix')
  t.same(list.tags, ['admin API'], 'the list under admin API')
  t.same(doc.json.paths['/healthz'].get.tags, ['operations'], 'health under operations')
  t.notOk(Object.keys(doc.json.paths).some((p) => p.startsWith('/console')), 'the console pages are not in the API document')

  // Structural validity: every $ref resolves, every operation has responses.
  const refs = JSON.stringify(doc.json).match(/"\$ref":"#\/components\/schemas\/[^"]+"/g) ?? []
  for (const ref of new Set(refs)) {
    const name = ref.split('/').at(-1)!.replace('"', '')
    t.ok(doc.json.components?.schemas?.[name], `${name} resolves`)
  }

  const ui = await service.api('GET', '/docs', { token: null })
  t.equal(ui.status, 200, 'the browsable UI is served at /docs')
  t.notMatch(ui.text, /https?:\/\/(cdn|unpkg|cdnjs|jsdelivr)/i, 'loading nothing from a CDN')
  const bundle = await service.api('GET', '/docs/static/swagger-ui-bundle.js', { token: null })
  t.equal(bundle.status, 200, 'its script comes from this service')
})

t.test('in sandbox mode the fake Wix is documented last, under its own tag', async (t) => {
  const service = await startService(t, { db, env: { WIX_APP_ID: '', WIX_APP_SECRET: '' } })
  const doc = await service.api('GET', '/docs/json', { token: null })
  t.same(doc.json.tags.map((tag: { name: string }) => tag.name), ['Wix', 'admin API', 'operations', 'sandbox'], 'sandbox is the last tag')
  const sandboxOps = Object.entries(doc.json.paths as Record<string, Record<string, { tags?: string[] }>>)
    .filter(([p]) => p.startsWith('/_sandbox')).flatMap(([, ops]) => Object.values(ops))
  t.ok(sandboxOps.length > 0 && sandboxOps.every((op) => op.tags?.[0] === 'sandbox'), `its ${sandboxOps.length} operations are tagged sandbox`)
})

t.test('the machine definition for visualisers', async (t) => {
  const service = await startService(t, { db })
  const res = await service.api('GET', '/api/machines/installation')
  t.equal(res.status, 200, 'served to the admin')
  t.equal(res.json.id, 'installation', 'the installation machine')
  t.same(Object.keys(res.json.definition.states).slice(0, 6), ['AppUrlHit', 'Authorizing', 'CodeReceived', 'Tokened', 'SetupIncomplete', 'Finished'], 'its states by their contract names, in order')
  t.equal(res.json.definition.states.CodeReceived.invoke[0].src, 'exchangeCode', 'effects by name')
  t.equal((await service.api('GET', '/api/machines/installation', { token: null })).status, 401, 'and only to the admin')
})
