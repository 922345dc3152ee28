/**
 * Warm images on the node (issue 16): makes the warm states the desired state lists as
 * `warming` (one at a time, beside the reconcile loop: a template takes seconds to boot),
 * keeps what each ended as until the control plane has heard it, and deletes the warm states
 * it no longer lists (unless a VM's disk stands on one).
 */
import type { DesiredWarm } from '../api/schemas/desired.ts';
import type { NodeReport } from '../api/schemas/node.ts';
import type { WarmStates, VmSpec } from './host/driver.ts';

type WarmReport = NonNullable<NodeReport['warm']>[number];

export class WarmSync {
  /** What each one this process made ended as, until the desired state no longer says `warming`. */
  private readonly done = new Map<string, WarmReport>();
  private readonly busy = new Set<string>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly states: WarmStates,
    /** The template's spec (its image's blobs fetched first). */
    private readonly template: (w: DesiredWarm) => Promise<VmSpec>,
    /** Told when one ended: the agent reports at once. */
    private readonly ended: () => void,
    private readonly log: (msg: string) => void,
  ) {}

  /** Starts (in the background) the warm states to make; never throws. */
  run(warm: readonly DesiredWarm[] | undefined): void {
    for (const w of warm ?? []) {
      if (w.state !== 'warming' || this.done.has(w.id) || this.busy.has(w.id)) continue;
      this.busy.add(w.id);
      this.chain = this.chain.then(() => this.make(w));
    }
  }

  private async make(w: DesiredWarm): Promise<void> {
    try {
      const r = await this.states.make(await this.template(w));
      this.done.set(w.id, { id: w.id, state: 'ready', sizeBytes: r.sizeBytes, ms: r.ms });
      this.log(`warm state ${w.id} of image ${w.image.name}: ready in ${r.ms} ms (${r.sizeBytes} bytes)`);
    } catch (e) {
      const reason = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 1000);
      this.done.set(w.id, { id: w.id, state: 'failed', reason });
      this.log(`warm state ${w.id} of image ${w.image.name} failed: ${reason}`);
    } finally {
      this.busy.delete(w.id);
      this.ended();
    }
  }

  /** For the report: each `warming` one that ended here. */
  report(warm: readonly DesiredWarm[] | undefined): WarmReport[] {
    return (warm ?? []).filter((w) => w.state === 'warming').flatMap((w) => (this.done.has(w.id) ? [this.done.get(w.id)!] : []));
  }

  /** Deletes the warm states not listed (absent list: no word, nothing deleted) and forgets settled results. */
  async prune(warm: readonly DesiredWarm[] | undefined): Promise<void> {
    if (warm === undefined) return;
    const listed = new Map(warm.map((w) => [w.id, w]));
    for (const id of [...this.done.keys()]) if (listed.get(id)?.state !== 'warming') this.done.delete(id);
    for (const id of this.states.list()) {
      if (listed.has(id) || this.busy.has(id)) continue;
      await this.states.remove(id).catch((e) => this.log(`warm state ${id} kept: ${e instanceof Error ? e.message : String(e)}`));
    }
  }
}
