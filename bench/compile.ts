import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
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
 *
 * With `against` (a git revision), the other side is not the reference but the engine as it was
 * at that revision, built from its own sources and migrations (`git archive`) with this
 * checkout's dependencies: two versions of the engine measured in alternating rounds on the same
 * host, so a change smaller than the host's drift between two runs can still be told.
 */
export function compileServers(log: (s: string) => void, against?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'wie-bench-build-'))
  // The package's build (scripts/build.mjs), with the reference (which borrows the token cipher from src/) added.
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    extends: join(root, 'tsconfig.build.json'),
    compilerOptions: { rootDir: root, declaration: false, typeRoots: [join(root, 'node_modules/@types')] },
    include: ['src', 'machines', ...(against ? [] : ['bench/reference'])].map((d) => join(root, d)),
  }))
  build({ outDir: join(dir, 'dist'), project: join(dir, 'tsconfig.json') })
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir')
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, type: 'module' }))
  log(`compiled the engine${against ? '' : ' and the reference'} into ${dir}`)
  return {
    engine: join(dir, 'dist/src/server.js'),
    reference: against ? compileRevision(dir, against, log) : join(dir, 'dist/bench/reference/server.js'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** The engine at `rev`, from that revision's tree (its package.json, sources and migrations), compiled under `dir`. */
function compileRevision(dir: string, rev: string, log: (s: string) => void) {
  const tree = join(dir, 'baseline')
  mkdirSync(tree)
  const archive = execFileSync('git', ['archive', '--format=tar', rev], { cwd: root, maxBuffer: 256 * 1024 * 1024 })
  execFileSync('tar', ['-x', '-C', tree], { input: archive })
  symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'), 'dir')
  build({ outDir: join(tree, 'dist'), project: join(tree, 'tsconfig.build.json'), migrations: join(tree, 'migrations') })
  const commit = execFileSync('git', ['rev-parse', '--short', rev], { cwd: root, encoding: 'utf8' }).trim()
  log(`compiled the engine at ${rev} (${commit}) into ${tree}`)
  return join(tree, 'dist/src/server.js')
}
