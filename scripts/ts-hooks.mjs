// Module hooks for the test runner: TypeScript files compiled by esbuild, one at a time; every
// other module loads as Node loads it. Why not tsx: its hooks also intercept every CommonJS
// require (fastify's hundreds) and cost about a second of CPU per process at start; ours import
// only `.ts` files, all written with explicit `.ts` extensions and type-only imports marked
// (tsconfig's allowImportingTsExtensions and verbatimModuleSyntax), which is all this needs.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { transformSync } from 'esbuild'

const options = {
  loader: 'ts',
  format: 'esm',
  target: `node${process.versions.node}`,
  sourcemap: 'inline',
  tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true } },
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context)
  const path = fileURLToPath(url)
  const { code } = transformSync(readFileSync(path, 'utf8'), { ...options, sourcefile: path })
  return { format: 'module', source: code, shortCircuit: true }
}
