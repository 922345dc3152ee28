/**
 * The graph of paths as SVG: network boxes, service and CIDR nodes, one arrow per pair of
 * nodes. Nodes and edges are buttons (Tab, Enter), so the graph is usable without a mouse.
 */
import type { Graph } from '../../../../src/api/schemas/graph.ts';
import { layoutGraph, NODE_H, NODE_W, type PlacedEdge, type PlacedNode } from './graph-layout.ts';

interface Props {
  graph: Graph;
  /** The edge whose paths are shown. */
  edge: string | null;
  /** The nodes picked for "may A reach B?" (first A, then B). */
  picked: readonly string[];
  onEdge(edge: PlacedEdge): void;
  onNode(node: PlacedNode): void;
}

const activate = (fn: () => void) => (e: KeyboardEvent) => {
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    fn();
  }
};

function nodeLines(n: PlacedNode): [string, string] {
  const [first, second] = n.node.label.split('\n');
  return [first ?? n.id, second ?? ''];
}

export function GraphView({ graph, edge, picked, onEdge, onNode }: Props) {
  const l = layoutGraph(graph);
  if (l.nodes.length === 0) return <p class="empty">No services and no paths yet.</p>;
  return (
    <div class="graph-scroll" tabIndex={0} role="region" aria-label="The graph of paths (scrolls sideways)">
      <svg class="graph" viewBox={`0 0 ${l.width} ${l.height}`} width={l.width} height={l.height} role="group" aria-label="Services and the paths between them">
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" fill="currentColor" />
          </marker>
        </defs>
        {l.clusters.map((c) => (
          <g key={`c-${c.network}`} class="graph-cluster">
            <rect x={c.x} y={c.y} width={c.w} height={c.h} rx="8" />
            <text x={c.x + 10} y={c.y + 16}>
              {c.label}
            </text>
          </g>
        ))}
        {l.edges.map((e) => (
          <g
            key={e.key}
            class={`graph-edge${edge === e.key ? ' selected' : ''}`}
            role="button"
            tabIndex={0}
            aria-pressed={edge === e.key}
            aria-label={`paths from ${e.from.replace(/^service:/, '')} to ${e.to.replace(/^service:/, '')}: ${e.label}`}
            data-edge={e.key}
            onClick={() => onEdge(e)}
            onKeyDown={activate(() => onEdge(e))}
          >
            <path class="hit" d={e.d} />
            <path class="line" d={e.d} marker-end="url(#arrow)" />
            <text x={e.labelX} y={e.labelY} text-anchor="middle">
              {e.label}
            </text>
          </g>
        ))}
        {l.nodes.map((n) => {
          const [title, sub] = nodeLines(n);
          const at = picked.indexOf(n.id);
          return (
            <g
              key={n.id}
              class={`graph-node ${n.node.kind}${at >= 0 ? ' picked' : ''}${n.node.instances === null && n.node.kind === 'service' ? ' missing' : ''}`}
              role="button"
              tabIndex={0}
              aria-pressed={at >= 0}
              aria-label={`${n.node.kind} ${title}${sub ? `, ${sub}` : ''}${at === 0 ? ' (picked as A)' : at === 1 ? ' (picked as B)' : ''}`}
              data-node={n.id}
              onClick={() => onNode(n)}
              onKeyDown={activate(() => onNode(n))}
            >
              <rect x={n.x} y={n.y} width={NODE_W} height={NODE_H} rx="6" />
              <text x={n.x + NODE_W / 2} y={n.y + 19} text-anchor="middle" class="title">
                {title}
              </text>
              <text x={n.x + NODE_W / 2} y={n.y + 36} text-anchor="middle" class="sub">
                {`${at === 0 ? 'A · ' : at === 1 ? 'B · ' : ''}${sub}`}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}
