/**
 * A graph (model.ts) as Graphviz DOT text, for `dot -Tsvg` or any Graphviz tool. Every id and
 * label is a quoted string with `\` and `"` escaped (and line breaks as DOT's `\n`), so no name
 * can close a string, start an HTML label (`<...>`) or reach one of the labels' `\N`-style
 * escapes; the attributes themselves are fixed here. (Graphviz unescapes `\\` in labels only:
 * an id keeps it doubled, which names never contain.) Order is the model's, which is sorted.
 */
import type { Graph, GraphNode } from './model.ts';

/** A DOT double-quoted string: the text, exactly (a line break becomes DOT's centred `\n`). */
export function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r\n|\r|\n/g, '\\n')}"`;
}

function nodeLine(n: GraphNode, indent: string): string {
  const style =
    n.kind === 'service'
      ? n.instances === null
        ? 'shape=box, style="rounded,dashed"'
        : 'shape=box, style=rounded'
      : n.kind === 'internet'
        ? 'shape=doubleoctagon'
        : 'shape=ellipse';
  return `${indent}${dotString(n.id)} [label=${dotString(n.label)}, ${style}];`;
}

export function renderDot(g: Graph): string {
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const out: string[] = ['digraph butter {', '  rankdir=LR;', '  fontname="Helvetica";', '  node [fontname="Helvetica"];', '  edge [fontname="Helvetica"];'];
  // Sources outside every network first, at the top level, so they are drawn outside the
  // clusters (and a service of no cluster given, rather than dropped).
  const clustered = new Set(g.clusters.flatMap((c) => c.nodes));
  for (const n of g.nodes) if (!clustered.has(n.id)) out.push(nodeLine(n, '  '));
  for (const c of g.clusters) {
    out.push(`  subgraph ${dotString(`cluster_${c.network}`)} {`, `    label=${dotString(c.label)};`);
    for (const id of c.nodes) out.push(nodeLine(byId.get(id)!, '    '));
    // Graphviz draws no empty cluster: a placeholder keeps an empty network on the picture.
    if (c.nodes.length === 0) out.push(`    ${dotString(`empty:${c.network}`)} [label="(no services)", shape=plaintext];`);
    out.push('  }');
  }
  for (const e of g.edges) out.push(`  ${dotString(e.from)} -> ${dotString(e.to)} [label=${dotString(e.label)}];`);
  out.push('}');
  return out.join('\n') + '\n';
}
