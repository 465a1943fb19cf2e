import t from 'tap'
import { freshDatabase } from './support/database.ts'
import { siteOwner } from './support/flow.ts'
import { startService } from './support/service.ts'

/** Logs are JSON lines; each carries its request id, and each line about an installation its id. */

const db = await freshDatabase()
t.teardown(db.drop)

t.test('a whole flow, as the logs tell it', async (t) => {
  const service = await startService(t, { db })
  const owner = siteOwner(service)
  await owner.openAppUrl()
  const id = await owner.installationId()
  await owner.callback(await owner.approve())
  await service.api('POST', `/api/installations/${id}/finish`)
  await service.api('GET', '/api/installations/00000000-0000-4000-8000-000000000000')

  const lines = service.logs.join('').trim().split('\n')
  const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  t.equal(entries.length, lines.length, `all ${lines.length} lines are JSON`)

  const completed = entries.filter((e) => e.msg === 'request completed')
  const about = (url: RegExp) => completed.filter((e) => url.test(String((entries.find((x) => x.reqId === e.reqId && x.req) as { req?: { url?: string } } | undefined)?.req?.url)))
  for (const [label, url] of [['App URL', /^\/wix\/app-url/], ['Redirect URL', /^\/wix\/redirect/], ['finish', /\/finish$/]] as const) {
    const lines = about(url)
    t.ok(lines.length >= 1, `the ${label} request is logged`)
    for (const e of lines) {
      t.ok(e.reqId, `${label}: the line has its request id`)
      t.equal(e.workflowId, id, `${label}: and the installation id`)
    }
  }
  const transitions = entries.filter((e) => e.msg === 'transition' || e.msg === 'workflow created')
  t.ok(transitions.length >= 6, `${transitions.length} transition lines`)
  t.ok(transitions.every((e) => e.workflowId === id), 'each names the installation')
  const incoming = entries.filter((e) => e.msg === 'incoming request' && String((e.req as { url: string }).url).startsWith('/wix/redirect'))
  t.ok(incoming.length >= 1, 'the callback is logged as it arrives')
  for (const e of incoming) t.match((e.req as { url: string }).url, /code=%5Bredacted%5D|code=\[redacted\]/, 'with its code redacted from the URL')
  const notFound = completed.find((e) => e.res && (e.res as { statusCode: number }).statusCode === 404)
  t.ok(notFound, 'a failed lookup is logged with its status')
})
