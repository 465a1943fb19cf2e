import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { waitUntil } from './process.ts'

export const root = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)

interface ShOptions {
  cwd: string
  env?: NodeJS.ProcessEnv
  timeout?: number
}

/** Runs a command, failing with its output (not only its exit code) when it fails. */
export async function sh(cmd: string, args: string[], opts: ShOptions) {
  try {
    return await run(cmd, args, { ...opts, timeout: opts.timeout ?? 240_000, maxBuffer: 32 * 1024 * 1024 })
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string }
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
  }
}

export function tempDir(t: { teardown(fn: () => unknown): void }, prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), `wie-${prefix}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * What a fresh clone holds: the files git tracks (and new ones it does not ignore), copied;
 * never dist/, .data/ or node_modules/ from this checkout.
 */
export async function freshCopy(dir: string) {
  const { stdout } = await sh('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root })
  for (const file of stdout.split('\0').filter(Boolean)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true })
    try {
      cpSync(join(root, file), join(dir, file))
    } catch (err) {
      // A file deleted in the work tree but still tracked: a clone of the commit would have it.
      if ((err as { code?: string }).code !== 'ENOENT') throw err
    }
  }
  return dir
}

/**
 * `npm pack` of a fresh copy (its prepack builds dist/ with this checkout's dev dependencies,
 * linked, as `npm ci` would have installed them), into `dir`. Returns the tarball's path.
 */
export async function packFreshCopy(dir: string) {
  const copy = await freshCopy(join(dir, 'clone'))
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'), 'dir')
  const { stdout } = await sh('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: copy })
  return join(dir, stdout.trim().split('\n').at(-1)!)
}

/**
 * This run's tarball, packed once: by the first package test that asks, in the directory
 * scripts/test.mjs makes for the run (WIE_TEST_RUN_DIR); the others wait for it. Run outside
 * that script, each file packs its own into `dir`.
 */
export async function sharedTarball(dir: string) {
  const runDir = process.env.WIE_TEST_RUN_DIR
  if (!runDir) return packFreshCopy(dir)
  const home = join(runDir, 'pack')
  const outcome = join(runDir, 'pack.json')
  try {
    mkdirSync(home)
  } catch (err) {
    if ((err as { code?: string }).code !== 'EEXIST') throw err
    // Another file is packing: its outcome file appears when it is done, whatever the machine's load.
    await waitUntil('the npm pack of this run is ready', () => existsSync(outcome), 600_000)
    const { tarball, error } = JSON.parse(readFileSync(outcome, 'utf8')) as { tarball?: string; error?: string }
    if (error) throw new Error(`npm pack failed in another test file: ${error}`)
    return tarball!
  }
  const result = await packFreshCopy(home).then((tarball) => ({ tarball }), (err: Error) => ({ error: err.message }))
  writeFileSync(`${outcome}.tmp`, JSON.stringify(result))
  renameSync(`${outcome}.tmp`, outcome)
  if ('error' in result) throw new Error(result.error)
  return result.tarball
}

/** An empty ESM project with the tarball and fastify@5 installed: nothing else asked for. */
export async function consumerProject(dir: string, tarball: string) {
  const project = join(dir, 'consumer')
  mkdirSync(project)
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  await sh('npm', ['install', tarball, 'fastify@5', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: project })
  return project
}
