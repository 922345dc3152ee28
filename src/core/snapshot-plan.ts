/**
 * Snapshot planning (issue 16), pure: the default name of a new snapshot, and what a node does
 * to bring a VM's snapshot files to what its desired state lists.
 */

/** `snap-N` with the first N not taken: short, readable, and never a name already in use. */
export function nextSnapshotName(taken: ReadonlySet<string>): string {
  for (let n = 1; ; n++) if (!taken.has(`snap-${n}`)) return `snap-${n}`;
}

export interface SnapshotPlan {
  /** Listed, not on the host: take them, in the order listed (the control plane's order of asking). */
  take: string[];
  /** On the host, not listed (deleted, or failed): remove them, once nothing backs them. */
  remove: string[];
}

/**
 * `listed`: the snapshots the desired state wants for the VM; `present`: the files its node has;
 * `initial`: the one made with the disk (never taken later: a point after the guest's first
 * write is not the initial point); `hasDisk`: whether the VM's disk exists yet (a snapshot of
 * a disk not made yet waits for it).
 */
export function planSnapshots(listed: readonly string[], present: readonly string[], initial: string | undefined, hasDisk: boolean): SnapshotPlan {
  const have = new Set(present);
  const want = new Set(listed);
  const take = hasDisk ? listed.filter((id) => !have.has(id) && id !== initial) : [];
  const remove = present.filter((id) => !want.has(id));
  return { take, remove };
}
