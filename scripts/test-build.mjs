// The programs the tests start in processes of their own (the server, the CLI, the inspector
// replay, the embedded database module), bundled once per test run with esbuild into plain
// JavaScript, so each process starts on `node` alone instead of compiling TypeScript through tsx
// (about a second of CPU each). `sandbox.test.ts` still starts one service exactly as `npm start`
// does. Dependencies stay in node_modules (reached through a link beside the bundles), and every
// module keeps its own `import.meta.url`, so the migrations are read from where they are.
import { readFileSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Source file (from the package root) → the bundle beside it in the build directory. */
export const ENTRIES = ['src/server.ts', 'src/cli.ts', 'scripts/inspect.ts', 'src/db/embedded.ts']

/** Where `entry`'s bundle is in `dir`. */
export const bundled = (dir, entry) => join(dir, entry.replace(/\.ts$/, '.js'))

const ownUrl = {
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8').replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
      loader: 'ts',
    }))
  },
}

/** Bundles every entry into `dir` (which must exist and hold nothing else of these names). */
export async function buildForTests(dir) {
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir')
  await build({
    absWorkingDir: root,
    entryPoints: ENTRIES.map((entry) => ({ in: entry, out: entry.replace(/\.ts$/, '') })),
    outdir: dir,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node}`,
    logLevel: 'error',
    plugins: [ownUrl],
  })
}
