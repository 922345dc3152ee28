/**
 * The agent's reconcile planner: `plan(desired, observed, applied) → operations`. Pure, so
 * it can be re-run at any time (after a crash, on restart) and gives the same answer.
 *
 * `gen` is the VM's power generation: the control plane bumps it on `start` and `restart`.
 * The agent records the generation it last started; a VM that stopped by itself (guest
 * poweroff) at the current generation stays stopped, as it would on a public cloud.
 */
import type { DesiredVm } from '../api/schemas/desired.ts';

export interface Observed {
  id: string;
  running: boolean;
}

export interface Applied {
  gen: number;
}

export type Op =
  | { kind: 'start'; vm: DesiredVm }
  | { kind: 'restart'; vm: DesiredVm }
  | { kind: 'stop'; id: string }
  | { kind: 'destroy'; id: string };

export function plan(desired: readonly DesiredVm[], observed: readonly Observed[], applied: Readonly<Record<string, Applied>>): Op[] {
  const ops: Op[] = [];
  const want = new Map(desired.map((d) => [d.id, d]));
  const have = new Map(observed.map((o) => [o.id, o]));

  // VMs on the host that the control plane no longer lists, or wants gone.
  for (const o of observed) {
    const d = want.get(o.id);
    if (!d || d.power === 'deleted') ops.push({ kind: 'destroy', id: o.id });
  }
  for (const d of desired) {
    if (d.power === 'deleted') continue;
    const o = have.get(d.id);
    const started = applied[d.id]?.gen;
    if (d.power === 'stopped') {
      if (o?.running) ops.push({ kind: 'stop', id: d.id });
      continue;
    }
    if (!o?.running) {
      if (started !== d.restartGen) ops.push({ kind: 'start', vm: d });
    } else if (started !== undefined && started < d.restartGen) {
      ops.push({ kind: 'restart', vm: d });
    }
  }
  return ops;
}
