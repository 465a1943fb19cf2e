// Fails when a module of src/ or machines/ imports itself back through others, `import type`
// included: ESLint's import-x/no-cycle skips type imports, and a cycle over shared types is still
// a tangle to read (they belong in a module of their own, as src/engine/types.ts holds the engine's).
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const files = ['src', 'machines'].flatMap((dir) =>
  readdirSync(join(root, dir), { recursive: true }).filter((f) => String(f).endsWith('.ts')).map((f) => join(root, dir, String(f))))

/** Each file's relative imports and re-exports, type-only ones included. */
const edges = new Map(files.map((file) => {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest)
  const targets = source.statements
    .filter((s) => (ts.isImportDeclaration(s) || ts.isExportDeclaration(s)) && s.moduleSpecifier && ts.isStringLiteral(s.moduleSpecifier))
    .map((s) => s.moduleSpecifier.text)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => resolve(dirname(file), spec))
  return [file, targets]
}))

// Tarjan's strongly connected components: every component of more than one file is a cycle.
let index = 0
const stack = []
const state = new Map()
const cycles = []
function visit(file) {
  const s = { index, low: index, onStack: true }
  index++
  state.set(file, s)
  stack.push(file)
  for (const next of edges.get(file) ?? []) {
    if (!edges.has(next)) continue
    const n = state.get(next)
    if (!n) {
      visit(next)
      s.low = Math.min(s.low, state.get(next).low)
    } else if (n.onStack) s.low = Math.min(s.low, n.index)
  }
  if (s.low !== s.index) return
  const component = []
  let member
  do {
    member = stack.pop()
    state.get(member).onStack = false
    component.push(relative(root, member))
  } while (member !== file)
  if (component.length > 1) cycles.push(component.sort())
}
for (const file of files) if (!state.has(file)) visit(file)

if (cycles.length) {
  console.error(`${cycles.length} import cycle(s) in src/ and machines/ (type imports included):`)
  for (const c of cycles) console.error(`  ${c.join(' <-> ')}`)
  process.exit(1)
}
console.log(`import-cycles: ${files.length} modules, no cycle`)
