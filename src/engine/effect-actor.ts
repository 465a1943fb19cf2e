import { createActor, toPromise, type AnyActorLogic } from 'xstate'

class EffectTimeout extends Error {
  code = 'EFFECT_TIMEOUT'
  retryable = true
}

class EffectInterrupted extends Error {
  code = 'EFFECT_INTERRUPTED'
  retryable = true
}

/**
 * An effect's input as the machine gave it, plus which run this is (1 right after the transition
 * that started it, more after a retry, a crash or a shutdown: a first run may skip checks for
 * work an earlier run left behind) and a key that is the same for every run of this job, for
 * the effect to make its outside work idempotent.
 */
export const withRunInfo = (input: unknown, attempt: number, idempotencyKey: string) =>
  input && typeof input === 'object' && !Array.isArray(input) ? { ...input, attempt, idempotencyKey } : input

/** Runs an effect's actor to its output, or fails on its error, `timeoutMs` or `signal` (both retryable). */
export async function runActor(logic: AnyActorLogic, input: unknown, timeoutMs: number, signal: AbortSignal) {
  if (signal.aborted) throw new EffectInterrupted(`effect aborted before it started: ${String(signal.reason)}`)
  const actor = createActor(logic, { input })
  const result = toPromise(actor)
  result.catch(() => {}) // an effect that fails after we stopped waiting is not an unhandled rejection
  let timer: ReturnType<typeof setTimeout> | undefined
  let onAbort = () => {}
  const ended = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new EffectTimeout(`effect did not finish within ${timeoutMs} ms`)), timeoutMs)
    onAbort = () => reject(new EffectInterrupted(`effect aborted: ${String(signal.reason)}`))
    signal.addEventListener('abort', onAbort, { once: true })
  })
  actor.start()
  try {
    const output = await Promise.race([result, ended])
    // A stopped actor also "completes", with no output: only `done` is a success.
    if (actor.getSnapshot().status !== 'done') throw new EffectInterrupted('effect was stopped before it finished')
    return output
  } finally {
    clearTimeout(timer)
    signal.removeEventListener('abort', onAbort)
    actor.stop() // aborts the effect's own `signal` if it is still running
  }
}
