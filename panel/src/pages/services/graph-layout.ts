/**
 * Where the services page draws `GET /v1/graph`: the internet and CIDRs in a column on the
 * left, one box per network to their right (stacked), its services in columns by how many
 * paths lead to them inside the network. Drawn from the JSON rather than the server's SVG so
 * every node and edge is an element the page can make clickable and label for a screen
 * reader. Edges between the same two nodes (one per path: `tcp:80`, `udp:53`) are drawn as
 * one, labelled with all of them. Pure.
 */
import type { Graph } from '../../../../src/api/schemas/graph.ts';
import type { Path } from '../../../../src/api/schemas/path.ts';

type GraphNode = Graph['nodes'][number];
type GraphEdge = Graph['edges'][number];

export const NODE_W = 150;
export const NODE_H = 46;
const GAP_X = 70;
const GAP_Y = 18;
const PAD = 16;
const TITLE = 22;
const MARGIN = 12;

export interface PlacedNode {
  id: string;
  node: GraphNode;
  x: number;
  y: number;
}

export interface PlacedCluster {
  network: string;
  label: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** All the paths from one node to another, drawn as one line. */
export interface PlacedEdge {
  key: string;
  from: string;
  to: string;
  edges: GraphEdge[];
  label: string;
  /** SVG path data, ending where the arrowhead goes. */
  d: string;
  labelX: number;
  labelY: number;
}

export interface GraphLayout {
  width: number;
  height: number;
  nodes: PlacedNode[];
  clusters: PlacedCluster[];
  edges: PlacedEdge[];
}

/** The graph node id a path's FROM is drawn as (core/graph/model.ts names them so). */
export function fromNodeId(from: Path['from']): string {
  if ('service' in from) return `service:${from.service}`;
  return from.cidr === '0.0.0.0/0' ? 'internet' : `cidr:${from.cidr}`;
}

/** The paths one drawn edge stands for. */
export function pathsOfEdge(edge: Pick<PlacedEdge, 'from' | 'to'>, paths: readonly Path[]): Path[] {
  return paths.filter((p) => fromNodeId(p.from) === edge.from && `service:${p.to}` === edge.to);
}

/** Column of each service in its network: the longest chain of paths leading to it (cycles cut). */
function ranks(ids: readonly string[], edges: readonly GraphEdge[]): Map<string, number> {
  const inside = new Set(ids);
  const preds = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of edges) if (inside.has(e.from) && inside.has(e.to) && e.from !== e.to) preds.get(e.to)!.push(e.from);
  const rank = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (id: string): number => {
    const known = rank.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return -1; // a cycle: this edge is not counted
    visiting.add(id);
    let r = 0;
    for (const p of preds.get(id)!) r = Math.max(r, visit(p) + 1);
    visiting.delete(id);
    rank.set(id, r);
    return r;
  };
  for (const id of ids) visit(id);
  return rank;
}

export function layoutGraph(graph: Graph): GraphLayout {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const placed = new Map<string, PlacedNode>();
  const outside = graph.nodes.filter((n) => n.kind !== 'service');
  const left = MARGIN;
  outside.forEach((n, i) => placed.set(n.id, { id: n.id, node: n, x: left, y: MARGIN + TITLE + i * (NODE_H + GAP_Y) }));
  const x0 = outside.length ? left + NODE_W + GAP_X : left;

  const clusters: PlacedCluster[] = [];
  let y = MARGIN;
  let width = x0;
  const clustered = new Set<string>();
  for (const c of graph.clusters) {
    const ids = c.nodes.filter((id) => byId.has(id));
    ids.forEach((id) => clustered.add(id));
    const rank = ranks(ids, graph.edges);
    const columns: string[][] = [];
    for (const id of ids) (columns[rank.get(id)!] ??= []).push(id);
    const dense = columns.filter((col) => col && col.length);
    const rows = Math.max(1, ...dense.map((col) => col.length));
    const w = Math.max(NODE_W + 2 * PAD, dense.length * NODE_W + Math.max(0, dense.length - 1) * GAP_X + 2 * PAD);
    const h = TITLE + PAD + rows * NODE_H + (rows - 1) * GAP_Y + PAD;
    dense.forEach((col, ci) => col.forEach((id, ri) => placed.set(id, { id, node: byId.get(id)!, x: x0 + PAD + ci * (NODE_W + GAP_X), y: y + TITLE + PAD + ri * (NODE_H + GAP_Y) })));
    clusters.push({ network: c.network, label: c.label, x: x0, y, w, h });
    width = Math.max(width, x0 + w);
    y += h + GAP_Y;
  }
  // Services a path names but no cluster holds (their network is filtered out, or gone): below.
  const stray = graph.nodes.filter((n) => n.kind === 'service' && !clustered.has(n.id));
  stray.forEach((n, i) => placed.set(n.id, { id: n.id, node: n, x: x0 + i * (NODE_W + GAP_X), y }));
  if (stray.length) {
    width = Math.max(width, x0 + stray.length * (NODE_W + GAP_X));
    y += NODE_H + GAP_Y;
  }

  const groups = new Map<string, GraphEdge[]>();
  for (const e of graph.edges) {
    const key = `${e.from}>${e.to}`;
    const list = groups.get(key);
    if (list) list.push(e);
    else groups.set(key, [e]);
  }
  const edges: PlacedEdge[] = [];
  for (const [key, list] of groups) {
    const a = placed.get(list[0]!.from);
    const b = placed.get(list[0]!.to);
    if (!a || !b) continue;
    edges.push({ key, from: a.id, to: b.id, edges: list, label: list.map((e) => e.label).join(', '), ...route(a, b) });
  }
  const bottom = Math.max(y, MARGIN + TITLE + outside.length * (NODE_H + GAP_Y));
  return { width: width + MARGIN, height: bottom + MARGIN, nodes: [...placed.values()], clusters, edges };
}

/** A curve from A's right side to B's left side; backwards or within a column, a loop around. */
function route(a: PlacedNode, b: PlacedNode): Pick<PlacedEdge, 'd' | 'labelX' | 'labelY'> {
  const ay = a.y + NODE_H / 2;
  const by = b.y + NODE_H / 2;
  if (a.id === b.id) {
    const x = a.x + NODE_W;
    return { d: `M ${x} ${ay - 8} C ${x + 40} ${ay - 40}, ${x + 40} ${ay + 40}, ${x} ${ay + 8}`, labelX: x + 34, labelY: ay };
  }
  if (b.x > a.x + NODE_W) {
    const x1 = a.x + NODE_W;
    const x2 = b.x;
    const c = Math.max(30, (x2 - x1) / 2);
    return { d: `M ${x1} ${ay} C ${x1 + c} ${ay}, ${x2 - c} ${by}, ${x2} ${by}`, labelX: (x1 + x2) / 2, labelY: (ay + by) / 2 - 6 };
  }
  // Same column or leftwards: out of A's right side and into B's right side, bowing right.
  const x1 = a.x + NODE_W;
  const x2 = b.x + NODE_W;
  const bow = Math.max(x1, x2) + 40 + Math.abs(ay - by) / 6;
  return { d: `M ${x1} ${ay} C ${bow} ${ay}, ${bow} ${by}, ${x2} ${by}`, labelX: bow - 10, labelY: (ay + by) / 2 };
}
