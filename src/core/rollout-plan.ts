/**
 * The rollout controller's decisions: given a service's live instances (their revision and
 * state) and its target revision, the one next step. Pure, and keyed only on what the store
 * holds, so a control plane that restarts mid-rollout decides the same from the same rows.
 *
 * One at a time, surge first: a replacement is created and must be `running` before an old
 * instance goes, so no step leaves fewer instances running than before it. The first
 * replacement that fails (state `error`, or not running within `timeoutMs` of its creation)
 * stops the rollout: it is removed and the old instances are left as they are.
 */
export interface RolloutInstance {
  name: string;
  index: number;
  revision: number;
  state: string;
  reason: string | null;
  /** Creation time, ms since the epoch. */
  createdMs: number;
}

export type RolloutStep =
  | { kind: 'create' }
  | { kind: 'delete'; name: string }
  | { kind: 'wait'; name: string }
  | { kind: 'failed'; name: string; reason: string }
  | { kind: 'done' };

export interface RolloutInput {
  /** Live instances: not being deleted. */
  instances: readonly RolloutInstance[];
  target: number;
  count: number;
  nowMs: number;
  timeoutMs: number;
}

const oldestFirst = (a: RolloutInstance, b: RolloutInstance) => a.createdMs - b.createdMs || a.index - b.index;

export function planRollout(input: RolloutInput): RolloutStep {
  const fresh = input.instances.filter((i) => i.revision === input.target);
  const old = input.instances.filter((i) => i.revision !== input.target).sort(oldestFirst);
  // A replacement that is not running yet: it fails, or everything waits for it.
  for (const i of [...fresh].sort(oldestFirst)) {
    if (i.state === 'running') continue;
    if (i.state === 'error') return { kind: 'failed', name: i.name, reason: i.reason ?? 'error' };
    if (input.nowMs - i.createdMs > input.timeoutMs) return { kind: 'failed', name: i.name, reason: `not running after ${Math.round(input.timeoutMs / 1000)} s (${i.state}${i.reason ? `: ${i.reason}` : ''})` };
    return { kind: 'wait', name: i.name };
  }
  // Every replacement runs: one more than wanted means an old one may go now; one that does
  // not run anyway first (removing it costs no running instance), else the oldest.
  if (input.instances.length > input.count && old.length > 0) return { kind: 'delete', name: (old.find((i) => i.state !== 'running') ?? old[0]!).name };
  if (old.length === 0 && fresh.length >= input.count) return { kind: 'done' };
  return { kind: 'create' };
}

/** Scale-down: the newest instances go first (the oldest have proved themselves longest). */
export function newestFirst<T extends { index: number; createdMs: number }>(instances: readonly T[], n: number): T[] {
  return [...instances].sort((a, b) => b.createdMs - a.createdMs || b.index - a.index).slice(0, Math.max(0, n));
}
