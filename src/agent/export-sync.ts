/**
 * The agent's side of exports (issue 16, server/exports.ts): for each export its desired state
 * lists, the driver flattens the VM's snapshot into one file (`qemu-img convert`), the agent
 * hashes it and streams it up to `PUT /v1/nodes/{node}/exports/{id}` with the digest, which
 * the control plane checks. Any failure is reported with its reason. The temporary file lives
 * in `STATE/exports/` and goes whatever happens (and at the agent's start, after a crash).
 * Exports run beside the reconcile loop, one at a time: a big disk takes minutes and the VMs'
 * operations must not wait for it, nor two copies fill the disk at once.
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeDesired } from '../api/schemas/desired.ts';
import type { Client } from '../sdk/client.ts';
import type { SnapshotDisks } from './host/driver.ts';

type Wanted = NonNullable<NodeDesired['exports']>[number];

export class ExportSync {
  private readonly dir: string;
  /** Started by this process (done, failed or running): not started again while listed. */
  private readonly started = new Set<string>();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    stateDir: string,
    private readonly node: string,
    private readonly client: Client,
    private readonly disks: SnapshotDisks | undefined,
    private readonly log: (msg: string) => void,
  ) {
    this.dir = join(stateDir, 'exports');
    // What a crash left half-written is of no use: the control plane waits for a whole upload.
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Queues what is listed and new; forgets what is no longer listed. */
  run(exports: readonly Wanted[] | undefined): void {
    const listed = new Set((exports ?? []).map((e) => e.id));
    for (const id of this.started) if (!listed.has(id)) this.started.delete(id);
    for (const e of exports ?? []) {
      if (this.started.has(e.id)) continue;
      this.started.add(e.id);
      this.queue = this.queue.then(() => this.one(e)).catch((err) => this.log(`export ${e.id}: ${String(err)}`));
    }
  }

  /** Resolves once everything queued so far has ended (for tests and the agent's stop). */
  idle(): Promise<void> {
    return this.queue;
  }

  private async one(e: Wanted): Promise<void> {
    const tmp = join(this.dir, `${e.id}.part`);
    try {
      if (!this.disks) throw new Error("this node's driver keeps no snapshots");
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      chmodSync(this.dir, 0o700);
      await this.disks.export(e.vm, e.snapshot, tmp);
      const sha256 = await digest(tmp);
      await this.client.uploadExport(this.node, e.id, sha256, createReadStream(tmp));
      this.log(`export ${e.id} (vm ${e.vm}, snapshot ${e.snapshot}) uploaded: sha256 ${sha256.slice(0, 12)}`);
    } catch (err) {
      const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 900);
      this.log(`export ${e.id} (vm ${e.vm}, snapshot ${e.snapshot}) failed: ${reason}`);
      // A refused upload was failed by the control plane itself; this then answers 409, ignored.
      await this.client.call('nodeExportFailed', { params: { name: this.node, id: e.id }, body: { reason } }).catch(() => {});
    } finally {
      try {
        rmSync(tmp, { force: true });
      } catch (err) {
        this.log(`export ${e.id}: its temporary file ${tmp} was not removed: ${String(err)}`);
      }
    }
  }
}

function digest(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}
