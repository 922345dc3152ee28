/**
 * When each node last reported, kept in memory. A heartbeat that changes nothing else then
 * costs no transaction and no fsync (1,000 agents every 5 s would otherwise be 200 durable
 * writes a second that record only a time). The times reach the database in batches
 * (`flush`, every few seconds), so `node show` survives a restart roughly right; liveness
 * itself never depends on them: a restarted server gives every node a full timeout to report.
 */
export class Liveness {
  private readonly seen = new Map<string, string>();
  private readonly dirty = new Set<string>();

  constructor(private readonly startedAt: string) {}

  saw(node: string, at: string): void {
    this.seen.set(node, at);
    this.dirty.add(node);
  }

  /** The last report known, here or (from before a restart) in the database. */
  last(node: string, stored: string | null): string | null {
    return this.seen.get(node) ?? stored;
  }

  /** The time the heartbeat timeout runs from: the last report, but never before this server started. */
  aliveAt(node: string, stored: string | null): string {
    const last = this.last(node, stored);
    return last !== null && last > this.startedAt ? last : this.startedAt;
  }

  /** Reports not yet written to the database, and forgets that they were not. */
  takeDirty(): [node: string, at: string][] {
    const out = [...this.dirty].map((n): [string, string] => [n, this.seen.get(n)!]);
    this.dirty.clear();
    return out;
  }

  forget(node: string): void {
    this.seen.delete(node);
    this.dirty.delete(node);
  }
}
