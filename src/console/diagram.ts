import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk.bundled.js'
import type { AnyStateMachine, AnyStateNode } from 'xstate'
import { escapeHtml } from '../routes/html.ts'

/** One arrow of the machine: from a state (the machine itself for "from any state"), on an event, to a state. */
export interface Edge {
  id: string
  source: string
  event: string
  target: string
  label: string
}

interface Box { x: number; y: number; width: number; height: number }

/** The machine laid out once: boxes by state path (`''` is the machine), arrows with their polylines. */
export interface Layout {
  width: number
  height: number
  boxes: Map<string, Box & { compound: boolean; final: boolean }>
  edges: (Edge & { points: { x: number; y: number }[]; labelAt: { x: number; y: number } })[]
}

const INITIAL = '(start)'
const ANY = '(any state)'
const CHAR_WIDTH = 7.4
const pathOf = (node: AnyStateNode) => node.path.join('.')

/** `xstate.done.actor.exchangeCode` → `exchangeCode done`: what the event means, in the diagram's words. */
export function eventLabel(event: string): string {
  const done = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event)
  if (done) return `${done[2]} ${done[1] === 'done' ? 'done' : 'failed'}`
  const after = /^xstate\.after\.([^.]+)\./.exec(event)
  if (after) return `after ${after[1]}`
  return event
}

const guardName = (guard: unknown): string | undefined => {
  if (typeof guard === 'string') return guard
  const g = guard as { type?: string; guards?: unknown[] } | undefined
  if (g?.guards) return g.guards.map(guardName).join(' and ')
  return g?.type
}

/** Every arrow the machine declares, read off its state nodes (so the diagram follows the machine). */
export function machineEdges(machine: AnyStateMachine): Edge[] {
  const edges = new Map<string, Edge>()
  const add = (source: string, event: string, target: string, guard?: string) => {
    const id = `e${edges.size}`
    const key = `${source}|${event}|${target}`
    const label = `${eventLabel(event)}${guard ? ` [${guard}]` : ''}`
    if (!edges.has(key)) edges.set(key, { id, source, event, target, label })
  }
  const root = machine.root
  add(INITIAL, 'xstate.init', pathOf(root.states[root.initial!.target[0]!.key]!))
  const walk = (node: AnyStateNode) => {
    const from = node === root ? ANY : pathOf(node)
    for (const [event, transitions] of node.transitions) {
      for (const t of transitions) {
        for (const target of t.target ?? []) add(from, event, pathOf(target), guardName(t.guard))
      }
    }
    for (const t of node.always ?? []) {
      for (const target of t.target ?? []) add(from, 'always', pathOf(target), guardName(t.guard))
    }
    for (const child of Object.values(node.states)) walk(child)
  }
  walk(root)
  return [...edges.values()]
}

const nodeSize = (label: string) => ({ width: Math.max(96, Math.round(label.length * CHAR_WIDTH) + 28), height: 38 })
const elkId = (path: string) => `n:${path}`

function elkNodes(node: AnyStateNode): ElkNode[] {
  return Object.values(node.states).map((child) => {
    const children = elkNodes(child)
    if (!children.length) return { id: elkId(pathOf(child)), ...nodeSize(child.key) }
    return {
      id: elkId(pathOf(child)),
      children,
      layoutOptions: { 'elk.padding': '[top=34,left=14,bottom=14,right=14]' },
    }
  })
}

const layouts = new WeakMap<AnyStateMachine, Promise<Layout>>()

/** The machine's layout by elkjs (layered, top to bottom), computed once per machine. */
export function layoutMachine(machine: AnyStateMachine): Promise<Layout> {
  let layout = layouts.get(machine)
  if (!layout) {
    layout = computeLayout(machine)
    layouts.set(machine, layout)
  }
  return layout
}

async function computeLayout(machine: AnyStateMachine): Promise<Layout> {
  const edges = machineEdges(machine)
  const pseudo = [{ id: elkId(INITIAL), width: 16, height: 16 }, { id: elkId(ANY), ...nodeSize(ANY) }]
  const graph: ElkNode = {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.layered.spacing.nodeNodeBetweenLayers': '46',
      'elk.spacing.nodeNode': '28',
      'elk.spacing.edgeLabel': '4',
      'elk.padding': '[top=12,left=12,bottom=12,right=12]',
    },
    children: [...pseudo, ...elkNodes(machine.root)],
    edges: edges.map((e): ElkExtendedEdge => ({
      id: e.id,
      sources: [elkId(e.source)],
      targets: [elkId(e.target)],
      labels: [{ text: e.label, width: Math.round(e.label.length * 6.9) + 6, height: 14 }],
    })),
  }
  // Loaded on the first diagram: elkjs is ~30 MB resident, and a service nobody opens the console of never needs it.
  const { default: elk } = await import('elkjs/lib/elk.bundled.js')
  // A CommonJS module: its constructor is both the module and its `default`; TypeScript sees the latter.
  const laid = await new elk.default().layout(graph)

  // ELK gives children relative to their parent and edges relative to their container: make all absolute.
  const boxes: Layout['boxes'] = new Map()
  const offsets = new Map<string, { x: number; y: number }>([['root', { x: 0, y: 0 }]])
  const place = (node: ElkNode, at: { x: number; y: number }) => {
    for (const child of node.children ?? []) {
      const x = at.x + (child.x ?? 0)
      const y = at.y + (child.y ?? 0)
      offsets.set(child.id, { x, y })
      const path = child.id.slice(2)
      const stateNode = path === INITIAL || path === ANY ? undefined : machine.getStateNodeById(`${machine.id}.${path}`)
      const size = { width: child.width ?? 0, height: child.height ?? 0 }
      boxes.set(path, { x, y, ...size, compound: Boolean(child.children?.length), final: stateNode?.type === 'final' })
      place(child, { x, y })
    }
  }
  place(laid, { x: 0, y: 0 })
  const byId = new Map(edges.map((e) => [e.id, e]))
  return {
    width: Math.ceil(laid.width ?? 0),
    height: Math.ceil(laid.height ?? 0),
    boxes,
    edges: (laid.edges ?? []).map((e) => {
      const at = offsets.get((e as { container?: string }).container ?? 'root') ?? { x: 0, y: 0 }
      const s = e.sections?.[0]
      const corners = s ? [s.startPoint, ...(s.bendPoints ?? []), s.endPoint] : []
      const points = corners.map((p) => ({ x: p.x + at.x, y: p.y + at.y }))
      const label = e.labels?.[0]
      const labelAt = { x: (label?.x ?? 0) + at.x, y: (label?.y ?? 0) + at.y }
      return { ...byId.get(e.id)!, points, labelAt }
    }),
  }
}

/** One step of an installation's history, as far as the diagram cares. */
export interface Step { event: string; from: string | null; to: string }

const within = (path: string, ancestor: string) => path === ancestor || path.startsWith(`${ancestor}.`)

/** The arrows a history took: for each step, the most specific arrow that explains it. */
export function takenEdges(edges: Edge[], steps: Step[]): Set<string> {
  const taken = new Set<string>()
  for (const step of steps) {
    const candidates = edges.filter((e) =>
      e.event === step.event && within(step.to, e.target)
      && (step.from === null ? e.source === INITIAL : e.source === ANY || within(step.from, e.source)))
    const best = candidates.sort((a, b) => b.target.length - a.target.length || b.source.length - a.source.length)[0]
    if (best) taken.add(best.id)
    // A start that moved on by itself (an `always` arrow) took that arrow too.
    if (step.from === null && best && best.target !== step.to) {
      const always = edges.find((e) => e.event === 'always' && e.source === best.target && within(step.to, e.target))
      if (always) taken.add(always.id)
    } else if (step.from === null && !best) {
      const start = edges.find((e) => e.source === INITIAL)
      const always = start
        && edges.find((e) => e.event === 'always' && e.source === start.target && within(step.to, e.target))
      if (start && always) taken.add(start.id).add(always.id)
    }
  }
  return taken
}

const ancestors = (path: string) => path.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.'))

/**
 * The machine as an SVG: every state by name, arrows as laid out; the current state marked with
 * `aria-current="true"` and the word "now", the states and arrows this installation went through
 * drawn heavier (so the path reads without colour).
 */
export function renderDiagram(layout: Layout, o: { current: string; steps: Step[]; title: string }): string {
  const taken = takenEdges(layout.edges, o.steps)
  const visited = new Set(o.steps.flatMap((s) => [...(s.from ? ancestors(s.from) : []), ...ancestors(s.to)]))
  for (const e of layout.edges) if (taken.has(e.id) && e.source !== INITIAL && e.source !== ANY) visited.add(e.source)
  const current = new Set(ancestors(o.current))
  const leaf = o.current

  const edges = layout.edges.map((e) => {
    const d = e.points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')
    const cls = taken.has(e.id) ? 'edge taken' : 'edge'
    const arrow = taken.has(e.id) ? 'arrow-taken' : 'arrow'
    const at = `x="${(e.labelAt.x + 3).toFixed(1)}" y="${(e.labelAt.y + 11).toFixed(1)}"`
    return `<g class="${cls}" data-event="${escapeHtml(e.event)}"><path d="${d}" marker-end="url(#${arrow})"/>`
      + `<text ${at}>${escapeHtml(e.label)}</text></g>`
  })
  // Compound states first, so their children are drawn over them.
  const boxes = [...layout.boxes].sort(([, a], [, b]) => Number(b.compound) - Number(a.compound)).map(([path, b]) => {
    if (path === INITIAL) {
      return `<circle class="start" cx="${b.x + 8}" cy="${b.y + 8}" r="7"><title>start</title></circle>`
    }
    const name = path === ANY ? ANY : path.split('.').at(-1)!
    const classes = ['state', b.compound && 'compound', b.final && 'final', visited.has(path) && 'visited',
      current.has(path) && 'active', path === ANY && 'any'].filter(Boolean).join(' ')
    const isLeaf = path === leaf
    const id = `state-${escapeHtml(path.replace(/\./g, '-'))}`
    const attrs = `class="${classes}" id="${id}" data-state="${escapeHtml(path)}"`
      + (isLeaf ? ' aria-current="true"' : '')
    const textY = b.compound ? b.y + 20 : b.y + b.height / 2 + 5
    const textX = b.compound ? b.x + 10 : b.x + b.width / 2
    const anchor = b.compound ? 'start' : 'middle'
    const now = isLeaf ? `<text class="now" x="${b.x + b.width + 5}" y="${b.y + b.height / 2 + 4}">◀ now</text>` : ''
    return `<g ${attrs}><rect x="${b.x}" y="${b.y}" width="${b.width}" height="${b.height}" rx="${b.final ? 2 : 8}"/>`
      + `<text x="${textX}" y="${textY}" text-anchor="${anchor}">${escapeHtml(name)}</text>${now}</g>`
  })
  const marker = (id: string) =>
    `<marker id="${id}" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" `
    + 'markerHeight="9" orient="auto"><path d="M0,0L10,5L0,10z"/></marker>'
  // Room on the right for the "now" beside a state at the edge.
  const [width, height] = [layout.width + 64, layout.height + 8]
  return `<svg class="diagram" role="group" aria-labelledby="diagram-title" viewBox="-4 -4 ${width} ${height}" `
    + `width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">`
    + `<title id="diagram-title">${escapeHtml(o.title)}</title><defs>${marker('arrow')}${marker('arrow-taken')}</defs>`
    + `${boxes.join('')}${edges.join('')}</svg>`
}
