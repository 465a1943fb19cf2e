import type { Logger, Sealer } from '../../src/engine/index.ts'

/** A clock tests move by hand: timers, leases and backoff all read it. */
export function testClock(start = new Date('2026-01-01T00:00:00Z')) {
  let now = start.getTime()
  return {
    now: () => new Date(now),
    advance(ms: number) {
      now += ms
    },
  }
}

export const silentLog: Logger = { debug() {}, info() {}, warn() {}, error() {} }

export const identitySealer: Sealer = { seal: (s) => s, open: (s) => s }
