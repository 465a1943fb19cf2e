// Module hooks for the test runner: TypeScript files compiled by esbuild, one at a time; every
// other module loads as Node loads it. Why not tsx: its hooks also intercept every CommonJS
// require (fastify's hundreds) and cost about a second of CPU per process at start; ours import
// only `.ts` files, all written with explicit `.ts` extensions and type-only imports marked
// (tsconfig's allowImportingTsExtensions and verbatimModuleSyntax), which is all this needs.
//
// What esbuild makes of a file is kept in node_modules/.cache, named by the file's path and
// contents: each test process loads much the same hundred files, and once compiled they are read,
// not compiled again (nor esbuild started at all).
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const options = {
  loader: 'ts',
  format: 'esm',
  target: `node${process.versions.node}`,
  sourcemap: 'inline',
  tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true } },
}

const cacheDir = fileURLToPath(new URL('../node_modules/.cache/wix-install-engine/ts/', import.meta.url))
const version = JSON.stringify(options)
let esbuild

async function compile(path, source) {
  const key = createHash('sha256').update(version).update('\0').update(path).update('\0').update(source).digest('hex').slice(0, 32)
  const file = join(cacheDir, `${key}.js`)
  try {
    return readFileSync(file, 'utf8')
  } catch {
    // Not compiled yet: compiled below.
  }
  esbuild ??= await import('esbuild')
  const { code } = esbuild.transformSync(source, { ...options, sourcefile: path })
  try {
    mkdirSync(cacheDir, { recursive: true })
    // Written whole under another name, then renamed: a file running beside this one reads all or nothing.
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, code)
    renameSync(tmp, file)
  } catch {
    // A cache that cannot be written costs a compile next time, nothing more.
  }
  return code
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context)
  const path = fileURLToPath(url)
  return { format: 'module', source: await compile(path, readFileSync(path, 'utf8')), shortCircuit: true }
}
