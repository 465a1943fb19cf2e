// Runs tap with the given arguments and ends its output with one line CI counts:
// "N passed, N failed" (assertions), keeping tap's exit code.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const tap = fileURLToPath(new URL('../node_modules/.bin/tap', import.meta.url))
const child = spawn(tap, process.argv.slice(2), { stdio: ['inherit', 'pipe', 'inherit'] })
let tail = ''
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  tail = (tail + chunk).slice(-8192)
})
child.on('close', (code, signal) => {
  const summary = [...tail.matchAll(/# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?(?:, skip: (\d+))?/g)].at(-1)
  const passed = Number(summary?.[2] ?? 0)
  const failed = Number(summary?.[3] ?? 0)
  const skipped = Number(summary?.[4] ?? 0)
  process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`)
  process.exit(code ?? (signal ? 1 : 0))
})
