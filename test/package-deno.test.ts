import { join } from 'node:path'
import t from 'tap'
import { serverUrl } from './support/database.ts'
import { consumerProject, root, sharedTarball, tempDir } from './support/package.ts'
import { userAppRuns } from './support/user-app.ts'

/** test/package.test.ts's user app under Deno 2: the same tarball, installed by npm, run by deno. */

t.setTimeout(600_000)
const deno = { name: 'deno', cmd: join(root, 'node_modules/.bin/deno'), args: ['run', '-A', '--node-modules-dir=manual', 'app.mjs'] }

t.test("a user's Fastify app with the plugin, under deno", { skip: !serverUrl() && 'Deno runs it on a real Postgres: set TEST_DATABASE_URL (CI does)' }, async (t) => {
  const dir = tempDir(t, 'package-deno')
  const project = await consumerProject(dir, await sharedTarball(dir))
  const ended = await userAppRuns(t, deno, project)
  t.equal(ended.exitCode, 0, 'SIGTERM: close() drains the engine and the app exits 0')
  t.match(ended.output, /^closed$/m, 'after close() resolved')
})
