import { spawn } from 'node:child_process'
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { siteOwner } from './support/flow.ts'
import { freshCopy, root, sh, tempDir } from './support/package.ts'
import { waitUntil } from './support/process.ts'
import { freePort, type Service } from './support/service.ts'

/**
 * The container, rehearsed without Docker (these machines reach no image registry): every step
 * of the Dockerfile, read from it, run on a fresh copy of the repository — all dependencies and
 * the build in one directory, a production-only install plus the compiled output in another —
 * then its CMD started as a non-root user, its HEALTHCHECK run, one sandbox install, SIGTERM.
 */

t.setTimeout(600_000)

interface Stage { name?: string; workdir: string; steps: { op: string; args: string }[] }

/** The Dockerfile's instructions by stage, continuation lines joined, comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  const stages: Stage[] = []
  for (const line of lines) {
    const [, op, args] = /^(\S+)\s+(.*)$/.exec(line)!
    if (op === 'FROM') stages.push({ name: /\bAS\s+(\S+)$/i.exec(args!)?.[1], workdir: '/', steps: [] })
    else stages.at(-1)!.steps.push({ op: op!, args: args! })
  }
  return stages
}

const NOBODY = 65534
const dockerfile = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'))

t.test('the Dockerfile is a multi-stage build whose last stage runs as a non-root user', async (t) => {
  t.equal(dockerfile.length, 2, 'two stages: build, then run')
  const run = dockerfile.at(-1)!
  const ops = run.steps.map((s) => s.op)
  const user = run.steps.find((s) => s.op === 'USER')?.args
  t.ok(ops.includes('USER') && !/^(root|0)$/.test(user ?? 'root'), 'it switches to a non-root user')
  t.match(run.steps.find((s) => s.op === 'HEALTHCHECK')?.args, /\/healthz/, 'its HEALTHCHECK asks /healthz')
  t.notMatch(JSON.stringify(run.steps), /tsx|--import/, 'and nothing in it runs TypeScript')
})

t.test('the rehearsal: build, production-only install, start, /healthz, a sandbox install, SIGTERM', async (t) => {
  const dir = tempDir(t, 'production')
  chmodSync(dir, 0o755)
  const context = await freshCopy(join(dir, 'context'))
  const stageDirs = new Map<string, { dir: string; workdir: string }>()
  let env: Record<string, string> = {}
  let user = ''
  let cmd: string[] = []
  let healthcheck: string[] = []
  let dataDir = ''
  const unknown: string[] = []

  for (const [i, stage] of dockerfile.entries()) {
    const here = join(dir, stage.name ?? `stage-${i}`)
    mkdirSync(here, { recursive: true })
    let workdir = '/'
    for (const { op, args } of stage.steps) {
      if (op === 'WORKDIR') workdir = args
      else if (op === 'ENV') for (const [, k, v] of args.matchAll(/(\w+)=(\S+)/g)) env[k!] = v!
      else if (op === 'COPY') {
        const from = /^--from=(\S+)\s+/.exec(args)
        const [src, dest] = args.replace(/^--\S+\s+/, '').split(/\s+(?=\S+$)/) as [string, string]
        if (from) {
          const source = stageDirs.get(from[1]!)!
          cpSync(join(source.dir, src.replace(`${source.workdir}/`, '')), join(here, dest), { recursive: true })
        } else {
          for (const file of src.split(/\s+/)) {
            cpSync(join(context, file), join(here, file === '.' ? '' : file), { recursive: true })
          }
        }
      } else if (op === 'RUN' && args.startsWith('npm ')) {
        await sh('sh', ['-c', args], { cwd: here })
      } else if (op === 'RUN' && /^install -d -o \S+ -g \S+ (\S+)$/.test(args)) {
        // The writable data directory: made here, for the user the service runs as.
        dataDir = join(here, 'data')
        mkdirSync(dataDir)
        chownSync(dataDir, NOBODY, NOBODY)
      } else if (op === 'USER') user = args
      else if (op === 'CMD') cmd = JSON.parse(args)
      else if (op === 'HEALTHCHECK') healthcheck = JSON.parse(args.replace(/^.*?CMD\s+/, ''))
      else if (op !== 'EXPOSE') unknown.push(`${op} ${args}`)
    }
    stageDirs.set(stage.name ?? String(i), { dir: here, workdir })
  }
  t.same(unknown, [], 'every step of the Dockerfile was rehearsed')
  const app = join(dir, `stage-${dockerfile.length - 1}`)
  t.ok(existsSync(join(app, 'dist/src/server.js')), 'the run stage holds the compiled service')
  // What loads lazily (the inspector, the fake Wix, PGlite) is imported only when used: a `.ts`
  // path left in a compiled import() would break the service then, not at start.
  const tsImports = readdirSync(join(app, 'dist'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.js'))
    .flatMap((f) => [...readFileSync(join(app, 'dist', f), 'utf8').matchAll(/import\(\s*['"](\.{1,2}\/[^'"]+\.ts)['"]/g)].map((m) => `${f}: ${m[1]}`))
  t.same(tsImports, [], 'no compiled file imports a .ts path')
  for (const tool of ['tsx', 'typescript', 'tap', 'deno']) {
    t.notOk(existsSync(join(app, 'node_modules', tool)), `and no ${tool}`)
  }
  t.ok(user && dataDir, 'and names its user and its data directory')

  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  env = { ...env, HOST: '127.0.0.1', PORT: String(port), PUBLIC_URL: url, DATA_DIR: dataDir, PATH: process.env.PATH! }
  // As Docker's USER does: this machine has no `node` user, so nobody stands in for it.
  const asUser = process.getuid?.() === 0 ? { uid: NOBODY, gid: NOBODY } : {}
  // tap's process tracking adds a NODE_OPTIONS `--import` from this checkout to every child; the
  // unprivileged user may not be able to read this checkout (a clone under a 0700 temp dir): the
  // service runs without it, as it would in the image.
  const bare = (argv: string[]) => ['env', '-u', 'NODE_OPTIONS', ...argv]
  const [exe, ...argv] = bare(cmd)
  const child = spawn(exe!, argv, { cwd: app, env, ...asUser, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')))
  await waitUntil('the service is ready', () => /Sandbox ready/.test(output) || child.exitCode !== null, 120_000)
  t.match(output, 'Sandbox ready', `the compiled service started in sandbox mode:\n${output.slice(0, 2000)}`)
  if (asUser.uid) {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
    t.match(status, new RegExp(`^Uid:\\s+${NOBODY}\\b`, 'm'), 'as a non-root user')
  }

  const health = await request(`${url}/healthz`)
  t.equal(health.statusCode, 200, '/healthz answers 200')
  await health.body.dump()
  const [probeExe, ...probeArgs] = bare(healthcheck)
  const probe = await sh(probeExe!, probeArgs, { cwd: app, env }).then(() => 0, () => 1)
  t.equal(probe, 0, 'the Dockerfile’s HEALTHCHECK command passes')

  const owner = siteOwner({ url } as Service)
  t.equal((await owner.openAppUrl('sandbox-install')).status, 302, 'the sandbox App URL redirects to the installer')
  const done = await owner.callback(await owner.approve())
  t.equal(done.status, 302, 'the Redirect URL sends the browser on after the code exchange')
  const adminToken = /admin token for \/api: (\S+?)["\s]/.exec(output)?.[1]
  const instanceId = new URL(done.location!).searchParams.get('instanceId')
  const headers = { authorization: `Bearer ${adminToken}` }
  const one = await request(`${url}/api/installations/${instanceId}`, { headers })
  t.match(await one.body.json(), { state: 'SetupIncomplete' }, 'the sandbox install completed on the embedded Postgres')

  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM: it drains and exits 0')
})
