// The package build: compiled JavaScript and declarations in dist/, beside the migrations they
// read at run time (src/db/migrate.ts finds them at ../../migrations from its compiled file).
import { execFileSync } from 'node:child_process'
import { cpSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
rmSync(`${root}dist`, { recursive: true, force: true })
const tsc = `${root}node_modules/typescript/bin/tsc`
// Emit only: `npm run typecheck` is where types are checked (CI runs it before the tests), and the
// declarations come out the same without the full check pass, in two thirds of the time.
execFileSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`, '--noCheck'], { stdio: 'inherit' })
cpSync(`${root}migrations`, `${root}dist/migrations`, { recursive: true, filter: (f) => !f.endsWith('schema.sql') })
