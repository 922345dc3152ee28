/** What on a node deserves a look: pure, so the overview and its test read the same rules. */
import type { Node } from '../../../../src/api/schemas/node.ts';

export interface Warning {
  node: string;
  kind: 'over-committed' | 'unreachable' | 'cordoned';
  text: string;
}

const RES = [
  ['cpus', 'CPU'],
  ['memoryBytes', 'memory'],
  ['diskBytes', 'disk'],
] as const;

export function nodeWarnings(n: Node): Warning[] {
  const out: Warning[] = [];
  if (n.state === 'unreachable') out.push({ node: n.name, kind: 'unreachable', text: `${n.name} is unreachable: it missed its heartbeats; its VMs are unknown` });
  if (n.cordoned) out.push({ node: n.name, kind: 'cordoned', text: `${n.name} is cordoned: it takes no new VMs` });
  // Allocated beyond allocatable happens only by `--force` (or ratios lowered later).
  const over = RES.filter(([k]) => n.allocated[k] > n.allocatable[k]).map(([, label]) => label);
  if (over.length) out.push({ node: n.name, kind: 'over-committed', text: `${n.name} is over-committed: more ${over.join(', ')} allocated than allocatable` });
  return out;
}

export interface Totals {
  allocated: Node['allocated'];
  allocatable: Node['allocatable'];
  total: Node['allocatable'];
}

/** The cluster's sums; a node that never reported its capacity counts 0 of it. */
export function totals(nodes: Node[]): Totals {
  const zero = () => ({ cpus: 0, memoryBytes: 0, diskBytes: 0 });
  const t: Totals = { allocated: zero(), allocatable: zero(), total: zero() };
  for (const n of nodes)
    for (const [k] of RES) {
      t.allocated[k] += n.allocated[k];
      t.allocatable[k] += n.allocatable[k];
      t.total[k] += n.capacity?.[k] ?? 0;
    }
  return t;
}
