import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from '../scripts/build.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * Both servers as production runs them: compiled JavaScript under plain `node`, no TypeScript
 * loader. One `tsc` emit with the package's build settings (as `npm run build` and the
 * Dockerfile make it) compiles the engine and the reference alike, into a temporary directory
 * that reaches this checkout's node_modules, so the working tree gets no build output.
 */
export function compileServers(log: (s: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'wie-bench-build-'))
  // The package's build (scripts/build.mjs), with the reference (which borrows the token cipher from src/) added.
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    extends: join(root, 'tsconfig.build.json'),
    compilerOptions: { rootDir: root, declaration: false, typeRoots: [join(root, 'node_modules/@types')] },
    include: ['src', 'machines', 'bench/reference'].map((d) => join(root, d)),
  }))
  build({ outDir: join(dir, 'dist'), project: join(dir, 'tsconfig.json') })
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir')
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, type: 'module' }))
  log(`compiled both servers into ${dir}`)
  return {
    engine: join(dir, 'dist/src/server.js'),
    reference: join(dir, 'dist/bench/reference/server.js'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}
