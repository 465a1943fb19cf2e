import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { request } from 'undici'
import { startFakeWix } from '../../src/sandbox/fake-wix.ts'
import { freshDatabase, serverUrl } from './database.ts'
import { siteOwner } from './flow.ts'
import { root } from './package.ts'
import { waitUntil } from './process.ts'
import { ADMIN_TOKEN, freePort, type Service } from './service.ts'

const INSTANCE_ID = '7c4e2f10-5a3b-4c8d-9e1f-2a3b4c5d6e7f'

export interface Runtime {
  name: string
  cmd: string
  args: string[]
}

/**
 * test/package/user-app.mjs, a user's own Fastify app registering the plugin from the
 * environment's names, run by `runtime` in `project` (the packed package installed there): it
 * passes the install scenarios end to end next to its own routes, and drains on SIGTERM.
 */
export async function userAppRuns(t: Test, runtime: Runtime, project: string) {
  copyFileSync(join(root, 'test/package/user-app.mjs'), join(project, 'app.mjs'))
  const db = await freshDatabase()
  t.teardown(db.drop)
  const fake = await startFakeWix({ appId: 'package-app', appSecret: `secret-${randomBytes(12).toString('hex')}` })
  t.teardown(fake.close)
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const env: Record<string, string> = {
    PORT: String(port),
    WIX_APP_ID: fake.wix.appId,
    WIX_APP_SECRET: fake.wix.appSecret,
    WIX_WWW_URL: fake.url,
    WIX_API_URL: fake.url,
    PUBLIC_URL: url,
    WIX_PUBLIC_KEY: fake.wix.publicKeyPem,
    ADMIN_TOKEN,
    COOKIE_SECRET: randomBytes(32).toString('hex'),
    TOKEN_ENCRYPTION_KEY: `k1:${randomBytes(32).toString('base64')}`,
    // Without a server the plugin opens its own embedded Postgres, loaded only then.
    ...(serverUrl() ? { DATABASE_URL: db.url } : { DATA_DIR: join(project, `data-${runtime.name}`) }),
  }
  const childEnv = { PATH: process.env.PATH!, HOME: process.env.HOME!, NO_COLOR: '1', ...env }
  const child = spawn(runtime.cmd, runtime.args, { cwd: project, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')))
  // However long a loaded machine takes to start it: the app says when it listens, or exits.
  await waitUntil('the app listens', () => output.includes('listening') || child.exitCode !== null, Infinity)
  t.match(output, 'listening with EngineError,createEngine,defineWorkflow,migrate', `the app started:\n${output}`)

  const hello = await request(`${url}/hello`)
  t.same(await hello.body.json(), { hello: 'world' }, 'its own GET /hello still answers')
  const boom = await request(`${url}/boom`)
  t.equal(boom.statusCode, 418, 'its own error handler still handles its routes')
  await boom.body.dump()
  const missing = await request(`${url}/not-a-route`)
  t.equal(missing.statusCode, 404, 'an unknown URL is the app’s own 404')
  t.notMatch(await missing.body.text(), 'NOT_FOUND', 'not the plugin’s')

  const owner = siteOwner({ url } as Service)
  const appUrl = await owner.openAppUrl()
  t.equal(appUrl.status, 302, 'the App URL redirects to the installer')
  t.equal(owner.installerUrl.origin + owner.installerUrl.pathname, `${fake.url}/installer/install`, 'at the fake Wix')
  t.equal(appUrl.headers['cross-origin-opener-policy'], 'unsafe-none', 'with the iframe-friendly opener policy')
  t.notOk(appUrl.headers['x-frame-options'], 'and no X-Frame-Options')
  t.equal(appUrl.headers['x-user-app'], 'yes', 'the app’s own hooks still run on the plugin’s routes')
  const back = await owner.approve(INSTANCE_ID)
  const done = await owner.callback(back)
  t.equal(done.status, 302, 'the Redirect URL sends the browser on')
  t.equal(done.location, `${url}/?instanceId=${INSTANCE_ID}`, 'to the post-install page')

  const platform = siteOwner({ url } as Service)
  const started = await platform.startFromPlatform()
  t.equal(started.status, 302, 'an install started from the app’s own platform goes to the installer')
  t.notOk(platform.installerUrl.searchParams.has('token'), 'with no token')

  const anonymous = await request(`${url}/api/installations`)
  t.equal(anonymous.statusCode, 401, '/api needs the admin token')
  await anonymous.body.dump()
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
  const one = await request(`${url}/api/installations/${INSTANCE_ID}`, { headers: auth })
  const installation = await one.body.json()
  t.match(installation, { instanceId: INSTANCE_ID, state: 'SetupIncomplete' }, 'the install is SetupIncomplete')
  const tokenUrl = `${url}/api/installations/${INSTANCE_ID}/access-token`
  const token = await request(tokenUrl, { method: 'POST', headers: auth })
  const { accessToken } = (await token.body.json()) as { accessToken: string }
  t.equal(token.statusCode, 200, 'the access-token route answers')
  t.ok(fake.wix.isValidAccessToken(accessToken), 'with a token the fake Wix accepts')
  const grants = fake.wix.requests.map((r) => (r.body as { grant_type?: string }).grant_type)
  t.equal(grants.filter((g) => g === 'authorization_code').length, 1, 'the code was exchanged once')
  // Wix removes the app from the site (its tokens stop working), then sends a signed AppRemoved.
  fake.wix.removeApp(INSTANCE_ID)
  const removed = await request(`${url}/wix/webhooks`, {
    method: 'POST', headers: { 'content-type': 'text/plain' }, body: await fake.wix.signWebhook('AppRemoved', INSTANCE_ID, {}),
  })
  await removed.body.dump()
  t.equal(removed.statusCode, 200, 'the uninstall webhook is answered 200')
  await waitUntil('the installation is Uninstalled', async () => {
    const r = await request(`${url}/api/installations/${INSTANCE_ID}`, { headers: auth })
    return ((await r.body.json()) as { state: string }).state === 'Uninstalled'
  }, 10_000)
  const after = await request(tokenUrl, { method: 'POST', headers: auth })
  t.same([after.statusCode, ((await after.body.json()) as { code: string }).code], [409, 'UNINSTALLED'], 'and the access-token route answers 409 UNINSTALLED')

  child.kill('SIGTERM')
  // The caller asserts how it ended: that is what its runtime is tested for.
  return { exitCode: await exited, output }
}
