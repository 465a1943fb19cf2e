// Runs the test files and ends the output with one line CI counts: "N passed, N failed[, N skipped]"
// (assertions), exiting non-zero when anything failed.
//
// `npm test` runs every test file but the release rehearsals; `npm run test:release` (`--release`)
// runs those; named files (`npm test -- test/foo.test.ts`) run whichever they are. Anything else
// (`npm test -- --grep=…`) goes to tap's own runner, as before.
//
// Why not tap's runner: each file is a tap test file and runs on its own with `node`, which is all
// this does, four at a time. tap's runner adds about 0.7 s of CPU a file (its process-info hooks,
// loaded into every process a test starts too), and the first run after `npm ci` rebuilds its
// plugins yet still loads tsx into every file: on two cores, a quarter of the suite's CPU.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildForTests } from './test-build.mjs'

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

/** Also in `npm test`, where it runs a sample; the release runs it larger (WIE_TEST_RELEASE). */
const RELEASE_AGAIN = ['test/fuzz-routes.test.ts']

const root = fileURLToPath(new URL('..', import.meta.url))
const tapConfig = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).tap
const given = process.argv.slice(2)
const release = given[0] === '--release'
const named = release ? given.slice(1) : given

// One directory per run for what test files build once and share: the programs they start in
// processes of their own, bundled here before any file runs, and the npm pack tarball.
const runDir = mkdtempSync(join(tmpdir(), 'wie-run-'))
mkdirSync(join(runDir, 'build'))
await buildForTests(join(runDir, 'build'))
const env = { ...process.env, WIE_TEST_RUN_DIR: runDir, ...(release && { WIE_TEST_RELEASE: '1' }) }

if (named.some((a) => a.startsWith('-'))) runTap()
else runFiles(release ? [...RELEASE, ...RELEASE_AGAIN, ...named] : named.length ? named : allButRelease())

/** tap's runner, with tap's options: the summary line read from its output. */
function runTap() {
  const args = release ? [...RELEASE, ...RELEASE_AGAIN, ...named] : [...RELEASE.map((file) => `--exclude=${file}`), ...named]
  const child = spawn(join(root, 'node_modules/.bin/tap'), args, { stdio: ['inherit', 'pipe', 'inherit'], env })
  let tail = ''
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk)
    tail = (tail + chunk).slice(-8192)
  })
  child.on('close', (code, signal) => {
    const counts = summaryOf(tail) ?? { pass: 0, fail: 0, skip: 0 }
    finish(counts, code ?? (signal ? 1 : 0))
  })
}

function allButRelease() {
  const files = []
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory() && entry.name !== 'support' && entry.name !== 'node_modules') walk(path)
      else if (entry.isFile() && entry.name.endsWith('.test.ts')) files.push(relative(root, path))
    }
  }
  walk(join(root, 'test'))
  return files.filter((f) => !RELEASE.includes(f))
}

/** How long each file took last time, so the longest start first and none is left running alone at the end. */
const TIMES = join(root, 'node_modules/.cache/wix-install-engine/test-times.json')

function runFiles(files) {
  let last = {}
  try {
    last = JSON.parse(readFileSync(TIMES, 'utf8'))
  } catch {
    // No times kept yet (a fresh clone): sizes stand in.
  }
  // Never run before: the bigger file first, as a guess.
  const weight = (f) => last[f] ?? statSync(join(root, f)).size / 1_000
  const queue = [...new Set(files)].sort((a, b) => weight(b) - weight(a))
  const jobs = Number(process.env.TEST_JOBS || tapConfig.jobs || 4)
  const timeoutS = Number(tapConfig.timeout || 240)
  const nodeArgs = ['--enable-source-maps', ...(tapConfig['node-arg'] ?? [])]
  const totals = { pass: 0, fail: 0, skip: 0 }
  const times = { ...last }
  const failed = []
  let running = 0
  let done = 0
  const started = Date.now()

  const next = () => {
    while (running < jobs && queue.length) runOne(queue.shift())
    if (running === 0 && queue.length === 0) {
      rmSync(TIMES, { force: true })
      mkdirSync(join(TIMES, '..'), { recursive: true })
      writeFileSync(TIMES, JSON.stringify(times, null, 1))
      if (failed.length) process.stdout.write(`\n# failed: ${failed.join(', ')}\n`)
      process.stdout.write(`# ${files.length} files in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
      finish(totals, failed.length ? 1 : 0)
    }
  }

  function runOne(file) {
    running++
    const at = Date.now()
    // The file's own tap times it out (TAP_TIMEOUT); this is the backstop if even that hangs.
    const child = spawn(process.execPath, [...nodeArgs, file], {
      cwd: root,
      env: { ...env, TAP_TIMEOUT: String(timeoutS) },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const backstop = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 60) * 1000)
    let out = ''
    child.stdout.on('data', (c) => (out += c))
    child.stderr.on('data', (c) => (out += c))
    child.on('close', (code, signal) => {
      clearTimeout(backstop)
      running--
      done++
      const seconds = (Date.now() - at) / 1000
      times[file] = seconds
      const counts = summaryOf(out)
      const ok = code === 0 && counts !== undefined && counts.fail === 0
      if (counts) for (const k of ['pass', 'fail', 'skip']) totals[k] += counts[k]
      if (!ok) {
        failed.push(file)
        if (!counts || counts.fail === 0) totals.fail++
        process.stdout.write(`\n# ---- ${file} ----\n${out}\n`)
      }
      const how = counts ? `${counts.pass} passed${counts.fail ? `, ${counts.fail} failed` : ''}${counts.skip ? `, ${counts.skip} skipped` : ''}` : 'no summary'
      const end = ok ? '' : ` (exit ${signal ?? code})`
      process.stdout.write(`${ok ? 'ok' : 'not ok'} ${done} - ${file} # ${how} in ${seconds.toFixed(1)} s${end}\n`)
      next()
    })
  }
  next()
}

/** The last `# { total: N, pass: N, fail: N, skip: N }` tap printed. */
function summaryOf(text) {
  const m = [...text.matchAll(/# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?(?:, skip: (\d+))?/g)].at(-1)
  return m && { pass: Number(m[2]), fail: Number(m[3] ?? 0), skip: Number(m[4] ?? 0) }
}

function finish({ pass, fail, skip }, code) {
  rmSync(runDir, { recursive: true, force: true })
  process.stdout.write(`\n${pass} passed, ${fail} failed${skip ? `, ${skip} skipped` : ''}\n`)
  process.exit(code)
}
