import { toSafeError } from './errors.ts'
import type { EndedJobs, LocalJob } from './jobs.ts'
import type { Logger } from './types.ts'
import type { TransitionListener, TransitionStep, Workflow } from './workflow.ts'

/** Who hears of a commit in this process: the job runner first, then the transition listeners. */
export function createListeners(log: Logger) {
  const listeners = new Set<TransitionListener>()
  // Set by the job runner: receives effect jobs this process leased to itself, and what a
  // transition ended (a run of one here is aborted).
  let runLocal: (jobs: LocalJob[], ended?: EndedJobs) => void = () => {}
  return {
    /** After a commit: effects start first, so a listener that throws can never strand one. */
    afterCommit(workflow: Workflow, local: LocalJob[], steps: TransitionStep[], ended?: EndedJobs) {
      runLocal(local, ended)
      for (const listener of listeners) {
        try {
          listener(workflow, steps)
        } catch (err) {
          log.error({ workflowId: workflow.id, err: toSafeError(err) }, 'transition listener threw; ignored')
        }
      }
    },
    /** `listener(workflow, steps)` after every committed create/send in this process. */
    onTransition(listener: TransitionListener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    setLocalRunner(fn: (jobs: LocalJob[], ended?: EndedJobs) => void) {
      runLocal = fn
    },
  }
}

export type Listeners = ReturnType<typeof createListeners>
