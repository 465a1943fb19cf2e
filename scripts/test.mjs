// Runs tap with the given arguments and ends its output with one line CI counts:
// "N passed, N failed" (assertions), keeping tap's exit code.
//
// `npm test` runs every test file but the release rehearsals; `npm run test:release` (`--release`)
// runs those; named files (`npm test -- test/foo.test.ts`) run whichever they are.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * Slow, and about the release rather than the behaviour: npm pack and a production install with
 * the packed plugin under Node and Deno, the Dockerfile rehearsed, Deno on the source, a Postgres
 * cluster killed and restarted, Chromium clicking through (which needs the system's Chromium).
 */
const RELEASE = [
  'test/package.test.ts',
  'test/package-deno.test.ts',
  'test/package-production.test.ts',
  'test/deno.test.ts',
  'test/chaos.test.ts',
  'test/postgres-crashes.test.ts',
  'test/browser.test.ts',
  'test/console-browser.test.ts',
]

const given = process.argv.slice(2)
const release = given[0] === '--release'
const args = release ? [...RELEASE, ...given.slice(1)] : [...RELEASE.map((file) => `--exclude=${file}`), ...given]

// One directory per run for what test files build once and share (the npm pack tarball).
const runDir = mkdtempSync(join(tmpdir(), 'wie-run-'))
const tap = fileURLToPath(new URL('../node_modules/.bin/tap', import.meta.url))
const child = spawn(tap, args, { stdio: ['inherit', 'pipe', 'inherit'], env: { ...process.env, WIE_TEST_RUN_DIR: runDir } })
let tail = ''
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  tail = (tail + chunk).slice(-8192)
})
child.on('close', (code, signal) => {
  rmSync(runDir, { recursive: true, force: true })
  const summary = [...tail.matchAll(/# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?(?:, skip: (\d+))?/g)].at(-1)
  const passed = Number(summary?.[2] ?? 0)
  const failed = Number(summary?.[3] ?? 0)
  const skipped = Number(summary?.[4] ?? 0)
  process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`)
  process.exit(code ?? (signal ? 1 : 0))
})
