/**
 * Which cached image blobs a node deletes: only those no VM on it uses, once they have been
 * unused for a grace period (a VM about to be recreated from the same image costs no second
 * download), or at once when the cache's filesystem runs low. Pure: the agent supplies what is
 * cached, what is in use and the time (agent/image-cache.ts does the I/O).
 */
export interface EvictionInput {
  /** Blobs in the cache (sha256). */
  cached: readonly string[];
  /** Blobs some VM on the node uses: never evicted. */
  inUse: ReadonlySet<string>;
  /** When each blob was first seen unused (ms), from the previous plan. */
  unusedSince: ReadonlyMap<string, number>;
  now: number;
  graceMs: number;
  /** The filesystem is below its free-space floor: unused blobs go without waiting. */
  diskLow: boolean;
}

export interface EvictionPlan {
  evict: string[];
  /** To hand to the next plan: the unused blobs kept, with when they were first seen unused. */
  unusedSince: Map<string, number>;
}

export function planEviction(i: EvictionInput): EvictionPlan {
  const evict: string[] = [];
  const unusedSince = new Map<string, number>();
  for (const sha of i.cached) {
    if (i.inUse.has(sha)) continue; // used again: its clock starts over when it is next unused
    const since = i.unusedSince.get(sha) ?? i.now;
    if (i.diskLow || i.now - since >= i.graceMs) evict.push(sha);
    else unusedSince.set(sha, since);
  }
  return { evict, unusedSince };
}

/** Below `minFreePercent` of the filesystem free (for unprivileged users, as `df` shows it). */
export function diskIsLow(fs: { bavail: number; blocks: number }, minFreePercent: number): boolean {
  return fs.blocks > 0 && (fs.bavail / fs.blocks) * 100 < minFreePercent;
}
