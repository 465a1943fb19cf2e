// Preload for the engine server under the benchmark, to tell heap growth from a heap not yet
// given back: every 5 s, a full collection, then one line of process.memoryUsage() in MB to
// /tmp/memlog-<pid>.txt. Use:
//   BENCH_ENGINE_NODE_ARGS="--expose-gc --import ./bench/memlog.mjs" npm run bench -- --mode flows
import { appendFileSync } from 'node:fs'

const file = `/tmp/memlog-${process.pid}.txt`
const mb = (bytes) => (bytes / 1048576).toFixed(1)
setInterval(() => {
  globalThis.gc?.()
  const m = process.memoryUsage()
  appendFileSync(file, `${new Date().toISOString()} rss=${mb(m.rss)} heapUsed=${mb(m.heapUsed)} heapTotal=${mb(m.heapTotal)} external=${mb(m.external)}\n`)
}, 5_000).unref()
