import { existsSync, rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildForTests, bundled } from '../../scripts/test-build.mjs'

let built: Promise<string> | undefined

/**
 * The plain-JavaScript bundle of `entry` (a source file from the package root, one of
 * scripts/test-build.mjs's ENTRIES) to start with `node`: built once per run by scripts/test.mjs
 * into the run's directory (WIE_TEST_RUN_DIR); run outside that script, once per test file.
 */
export async function builtEntry(entry: string): Promise<string> {
  built ??= (async () => {
    const runDir = process.env.WIE_TEST_RUN_DIR
    if (runDir && existsSync(join(runDir, 'build', 'node_modules'))) return join(runDir, 'build')
    const dir = await mkdtemp(join(tmpdir(), 'wie-build-'))
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
    await buildForTests(dir)
    return dir
  })()
  return bundled(await built, entry)
}
