/**
 * The agent's reconcile planner: `plan(desired, observed, applied) → operations`. Pure, so
 * it can be re-run at any time (after a crash, on restart) and gives the same answer.
 *
 * `gen` is the VM's power generation: the control plane bumps it on `start` and `restart`.
 * The agent records the generation it last started; a VM that stopped by itself (guest
 * poweroff) at the current generation stays stopped, as it would on a public cloud — unless
 * its restart policy says otherwise: a VM whose QEMU was killed or crashed at the current
 * generation is restarted per `decideRestart` (core/restart-policy.ts), with backoff and a cap.
 */
import type { DesiredVm } from '../api/schemas/desired.ts';
import { decideRestart, type VmExit } from './restart-policy.ts';

export interface Observed {
  id: string;
  running: boolean;
  /** Not running: how its last run ended, when known. */
  exit?: VmExit;
  /** Not running, its memory state saved (a suspend). */
  suspended?: boolean;
}

export interface Applied {
  gen: number;
  /** When (epoch ms) the agent restarted it after an exit within this generation. */
  restarts?: number[];
  /** Why it is the way it is (what the agent reports as the VM's reason): set by a `note` or a restart. */
  note?: string;
  /**
   * Scale to zero: the agent suspended it for idleness (its power stays `running`), at this
   * wake generation; its activator holds its taps until traffic or a `vm resume` (a new
   * `DesiredVm.wakeGen`) wakes it.
   */
  idle?: { reason: string; wakeGen: number };
}

export type Op =
  /** `restart`: this start is restart number `n` after the VM ended by itself, and why. */
  | { kind: 'start'; vm: DesiredVm; restart?: { n: number; reason: string } }
  /** Nothing to do to the VM now; remember (and report) why. */
  | { kind: 'note'; id: string; reason: string }
  | { kind: 'restart'; vm: DesiredVm }
  | { kind: 'stop'; id: string }
  /** Save its memory state and end it (power `suspended`). */
  | { kind: 'suspend'; id: string }
  /** Start it on its saved memory state: it goes on where it was, it does not boot. */
  | { kind: 'resume'; vm: DesiredVm }
  /** Throw its saved memory state away (a suspended VM told to stop). */
  | { kind: 'discard'; id: string }
  | { kind: 'destroy'; id: string };

/** `now` (epoch ms) times the restart backoff. */
export function plan(desired: readonly DesiredVm[], observed: readonly Observed[], applied: Readonly<Record<string, Applied>>, now = 0): Op[] {
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
    if (d.power === 'suspended') {
      // One that is not running has nothing to save: it stays as it is (saved, or stopped).
      if (o?.running) ops.push({ kind: 'suspend', id: d.id });
      continue;
    }
    if (d.power === 'stopped') {
      if (o?.running) ops.push({ kind: 'stop', id: d.id });
      else if (o?.suspended) ops.push({ kind: 'discard', id: d.id });
      continue;
    }
    if (!o?.running) {
      // A saved state is resumed whatever the generation: `vm resume` bumps none (the guest does not boot).
      // One the agent put to sleep for idleness is the agent's to wake (its activator), or a `vm resume`'s.
      if (o?.suspended) {
        const idle = applied[d.id]?.idle;
        if (!idle || idle.wakeGen !== (d.wakeGen ?? 0)) ops.push({ kind: 'resume', vm: d });
      }
      else if (started !== d.restartGen) ops.push({ kind: 'start', vm: d });
      else if (o?.exit !== undefined) {
        const a = applied[d.id]!;
        const decision = decideRestart(d.restart, o.exit, a.restarts ?? [], now);
        if (decision.kind === 'restart') ops.push({ kind: 'start', vm: d, restart: { n: decision.n, reason: decision.reason } });
        else if (a.note !== decision.reason) ops.push({ kind: 'note', id: d.id, reason: decision.reason });
      }
    } else if (started !== undefined && started < d.restartGen) {
      ops.push({ kind: 'restart', vm: d });
    }
  }
  return ops;
}
