import { createEngineCore } from "./engine.js";
import { createJobRunner } from "./runner.js";
export { defineWorkflow } from "./definition.js";
export { EngineError } from "./errors.js";
export { toWorkflow } from "./engine.js";
/** The durable engine: `create`/`send`/`get`/`waitFor`, plus `runner` for effects and timers. */
export function createEngine(opts) {
    const core = createEngineCore(opts);
    return { ...core, runner: createJobRunner(core, opts) };
}
