// Preloaded into every process the suite spawns (`--import ./chaos/orphan-guard.mjs`, with an IPC
// channel): when the suite dies, even by SIGKILL, the channel closes and the child goes too. The
// one given CHAOS_REAP (the fake Wix) first stops the suite's Postgres and removes its folder.
// Plain JavaScript: the servers run compiled, on `node` alone.
import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'

if (process.send) {
  process.channel?.unref()
  process.on('disconnect', () => {
    /** @type {{ pgCtl: string, data: string, dir: string } | ''} */
    const reap = process.env.CHAOS_REAP && JSON.parse(process.env.CHAOS_REAP)
    if (reap) {
      try {
        execFileSync('runuser', ['-u', 'postgres', '--', reap.pgCtl, '-D', reap.data, '-m', 'immediate', '-w', 'stop'], { stdio: 'ignore' })
      } catch {
        // already stopped: the suite cleaned up after itself
      }
      rmSync(reap.dir, { recursive: true, force: true })
    }
    process.kill(process.pid, 'SIGKILL')
  })
}
