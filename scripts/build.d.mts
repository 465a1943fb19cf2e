/** See build.mjs: emits `project` into `outDir` (default: the package's dist/) with the migrations beside it. */
export function build(o?: { outDir?: string; project?: string; migrations?: string }): void
