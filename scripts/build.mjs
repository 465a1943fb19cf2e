// The package build: compiled JavaScript and declarations in dist/, beside the migrations they
// read at run time (src/db/migrate.ts finds them at ../../migrations from its compiled file).
import { execFileSync } from 'node:child_process'
import { cpSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * Emits `project` (a tsconfig) into `outDir`, replacing what was there, and copies the migrations
 * (`migrations`, default this package's) beside it. The benchmark builds with its own tsconfig (the
 * reference added) into a temp dir, and an earlier revision of the package from its own sources.
 */
export function build({ outDir = join(root, 'dist'), project = join(root, 'tsconfig.build.json'), migrations = join(root, 'migrations') } = {}) {
  rmSync(outDir, { recursive: true, force: true })
  const tsc = join(root, 'node_modules/typescript/bin/tsc')
  // Emit only: `npm run typecheck` is where types are checked (CI runs it before the tests), and the
  // declarations come out the same without the full check pass, in two thirds of the time.
  execFileSync(process.execPath, [tsc, '-p', project, '--noCheck', '--outDir', outDir], { stdio: 'inherit' })
  cpSync(migrations, join(outDir, 'migrations'), { recursive: true, filter: (f) => !f.endsWith('schema.sql') })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) build()
