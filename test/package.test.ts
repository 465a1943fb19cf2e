import { copyFileSync, existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { consumerProject, root, sh, sharedTarball, tempDir } from './support/package.ts'
import { userAppRuns } from './support/user-app.ts'

/**
 * The package as a new user takes it: a fresh clone's `npm pack` tarball installed into an empty
 * ESM project beside fastify@5, imported by plain node (and by Deno), type-checked against its
 * declarations, and a user's own Fastify app that registers the plugin from the environment's
 * names and passes the install scenarios end to end, next to its own routes (under Deno:
 * test/package-deno.test.ts, on the same tarball).
 */

t.setTimeout(600_000)

const dir = tempDir(t, 'package')
const tarball = await sharedTarball(dir)
const project = await consumerProject(dir, tarball)

t.test('the tarball holds what runs, and installs with no TypeScript tooling', async (t) => {
  const { stdout } = await sh('tar', ['tzf', tarball], { cwd: dir })
  const files = stdout.trim().split('\n')
  const wanted = ['LICENSE', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/fastify.d.ts']
  wanted.push('dist/migrations/engine/001-engine.sql', 'dist/migrations/installation/001-installation.sql')
  for (const f of wanted.map((name) => `package/${name}`)) {
    t.ok(files.includes(f), `the tarball has ${f.slice(8)}`)
  }
  const source = (f: string) => /^package\/(test|bench|chaos|examples|src)\//.test(f) || /(?<!\.d)\.ts$/.test(f)
  t.notOk(files.some(source), 'and no sources, tests or benchmarks')
  const manifest = JSON.parse(readFileSync(join(project, 'node_modules/wix-install-engine/package.json'), 'utf8'))
  t.notOk(manifest.private, 'the package is publishable')
  t.equal(manifest.license, 'MIT', 'under the MIT license')
  for (const tool of ['tsx', 'typescript', 'tap']) {
    t.notOk(existsSync(join(project, 'node_modules', tool)), `${tool} is not installed with it`)
  }
})

t.test('plain node imports both entry points', async (t) => {
  const script = `
    const engine = await import('wix-install-engine')
    const plugin = await import('wix-install-engine/fastify')
    console.log(JSON.stringify({ createEngine: typeof engine.createEngine, defineWorkflow: typeof engine.defineWorkflow,
      migrate: typeof engine.migrate, plugin: typeof plugin.default, optionsFromEnv: typeof plugin.optionsFromEnv,
      meta: plugin.default[Symbol.for('plugin-meta')]?.name }))`
  const { stdout } = await sh(process.execPath, ['--input-type=module', '-e', script], { cwd: project })
  t.same(JSON.parse(stdout), {
    createEngine: 'function', defineWorkflow: 'function', migrate: 'function',
    plugin: 'function', optionsFromEnv: 'function', meta: 'wix-install-engine',
  }, 'the engine and the Fastify plugin (with fastify-plugin metadata) load from the tarball')
})

t.test('each entry point declares its types: a wrong event is a compile error', async (t) => {
  copyFileSync(join(root, 'test/package/types-check.ts'), join(project, 'check.ts'))
  const tsc = join(root, 'node_modules/typescript/bin/tsc')
  const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022']
  const types = ['--types', 'node', '--typeRoots', join(root, 'node_modules/@types')]
  const result = await sh(process.execPath, [tsc, ...args, ...types, 'check.ts'], { cwd: project })
    .then(() => 'ok', (err: Error) => err.message)
  t.equal(result, 'ok', 'check.ts type-checks: every @ts-expect-error line is an error, everything else is not')
})

t.test('the command line runs compiled, with no TypeScript loader', async (t) => {
  const { stdout } = await sh('npx', ['--no-install', 'wix-install-engine', '--help'], { cwd: project })
  t.match(stdout, 'installations list', 'npx wix-install-engine --help describes its commands')
})

t.test("a user's Fastify app with the plugin, under node", async (t) => {
  const ended = await userAppRuns(t, { name: 'node', cmd: process.execPath, args: ['app.mjs'] }, project)
  t.equal(ended.exitCode, 0, 'SIGTERM: close() drains the engine and the app exits 0')
  t.match(ended.output, /^closed$/m, 'after close() resolved')
})
