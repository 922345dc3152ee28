/**
 * The agent's side of disk snapshots (issue 16): takes the snapshots its desired state lists
 * and the host lacks (before the VM operations of a reconcile, so a clone's starting point
 * exists before the clone starts), deletes the ones no longer listed (after them, when a
 * restore has let go of the discarded layer), and says in each report which pending ones are
 * now ready or failed. Plans are `core/snapshot-plan.ts`; the files are the driver's.
 */
import type { DesiredVm } from '../api/schemas/desired.ts';
import type { ObservedVmReport } from '../api/schemas/node.ts';
import { planSnapshots } from '../core/snapshot-plan.ts';
import type { SnapshotDisks } from './host/driver.ts';

type SnapReport = NonNullable<ObservedVmReport['snapshots']>[number];

export class SnapshotSync {
  /** Per VM: the snapshots on the host as last listed. */
  private readonly present = new Map<string, Set<string>>();
  /** Per `vm/snapshot`: what this process measured of a take. */
  private readonly taken = new Map<string, { pauseMs?: number; sizeBytes?: number; memoryBytes?: number }>();
  private readonly failed = new Map<string, string>();

  constructor(
    private readonly disks: SnapshotDisks,
    private readonly log: (msg: string) => void,
  ) {}

  /** Takes what is listed and missing; true when it did anything. */
  async take(vms: readonly DesiredVm[]): Promise<boolean> {
    let did = false;
    for (const vm of vms) {
      if (vm.power === 'deleted' || !vm.snapshots) continue;
      const have = await this.disks.list(vm.id);
      const plan = planSnapshots(vm.snapshots.map((s) => s.id), have, vm.initialSnapshot, this.disks.hasDisk(vm.id));
      const memory = new Set(vm.snapshots.filter((s) => s.memory).map((s) => s.id));
      for (const id of plan.take) {
        const key = `${vm.id}/${id}`;
        if (this.failed.has(key)) continue; // reported; the control plane drops it from the list
        try {
          const r = await this.disks.take(vm.id, id, memory.has(id) ? { memory: true } : {});
          this.taken.set(key, r);
          have.push(id);
          this.log(`${vm.id}: snapshot ${id} taken${r.pauseMs !== undefined ? ` (guest paused ${r.pauseMs} ms)` : ''}${r.memoryBytes !== undefined ? `, memory state ${r.memoryBytes} bytes` : ''}`);
        } catch (e) {
          const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 500);
          this.failed.set(key, msg);
          this.log(`${vm.id}: snapshot ${id} failed: ${msg}`);
        }
        did = true;
      }
      this.present.set(vm.id, new Set(have));
    }
    return did;
  }

  /** Deletes what is no longer listed (a file something stands on stays, logged); forgets VMs that are gone. */
  async prune(vms: readonly DesiredVm[]): Promise<void> {
    const live = new Set<string>();
    for (const vm of vms) {
      if (vm.power === 'deleted' || !vm.snapshots) continue;
      live.add(vm.id);
      const have = await this.disks.list(vm.id);
      const { remove } = planSnapshots(vm.snapshots.map((s) => s.id), have, vm.initialSnapshot, this.disks.hasDisk(vm.id));
      for (const id of remove) {
        try {
          // Unlisted by the control plane, which merges only what may be (never `initial`, never under a clone): merged into what stands on it.
          await this.disks.remove(vm.id, id, true);
          this.log(`${vm.id}: snapshot ${id} deleted`);
        } catch (e) {
          this.log(`${vm.id}: snapshot ${id} not deleted: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      this.present.set(vm.id, new Set(await this.disks.list(vm.id)));
      const listed = new Set(vm.snapshots.map((s) => `${vm.id}/${s.id}`));
      for (const m of [this.taken, this.failed]) for (const k of m.keys()) if (k.startsWith(`${vm.id}/`) && !listed.has(k)) m.delete(k);
    }
    for (const id of this.present.keys()) if (!live.has(id)) this.present.delete(id);
    for (const m of [this.taken, this.failed]) for (const k of m.keys()) if (!live.has(k.split('/')[0]!)) m.delete(k);
  }

  /** What the report says of a VM's pending snapshots: ready (on the host) or failed. */
  report(vm: DesiredVm | undefined): SnapReport[] {
    if (!vm?.snapshots) return [];
    const out: SnapReport[] = [];
    const have = this.present.get(vm.id);
    for (const s of vm.snapshots) {
      if (s.state !== 'pending') continue;
      const key = `${vm.id}/${s.id}`;
      const failure = this.failed.get(key);
      if (failure !== undefined) out.push({ id: s.id, state: 'failed', reason: failure });
      else if (have?.has(s.id)) out.push({ id: s.id, state: 'ready', ...this.taken.get(key) });
    }
    return out;
  }
}
