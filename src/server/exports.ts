/**
 * Exports (issue 16): a VM's snapshot flattened by its node (`qemu-img convert`, one qcow2
 * with no backing file) and uploaded into the blob store, for two uses:
 * - an image (`image create NAME --from-vm VM`): listed `pending` until the upload, then an
 *   ordinary disk image (made as an upload's is: digest checked, inspected), or `failed`;
 * - the base of a clone on another node (`vm clone --node`): a blob no image names, which the
 *   clone's node fetches and verifies like an image's, kept while the clone exists.
 *
 * The agent contract: `NodeDesired.exports` lists a node's pending ones; the node uploads the
 * bytes to `PUT /v1/nodes/{name}/exports/{id}` with the digest it computed, or reports the
 * failure. Only that node may: the route is the node's own (server/auth.ts), and an export
 * of another node, or one no longer pending, is refused here (404/409), so a node cannot plant
 * bytes for another node's export or for an image it was not asked for.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { ApiError } from '../api/errors.ts';
import type { Image, ImageCreate, ImageFromVm } from '../api/schemas/image.ts';
import type { BlobFiles } from './blobs.ts';
import type { Images } from './images.ts';
import type { Snapshots, SnapshotRow } from './snapshots.ts';
import type { ImageRow, VmRow } from './store/rows.ts';
import type { Store, Tx } from './store/store.ts';

export interface ExportRow {
  id: string;
  node: string;
  vm_id: string;
  vm_name: string;
  snapshot_id: string;
  snapshot_name: string;
  image: string | null;
  source_image: string | null;
  kind: 'disk' | 'kernel';
  state: 'pending' | 'ready' | 'failed';
  reason: string | null;
  sha256: string | null;
  format: 'qcow2' | 'raw' | null;
  size_bytes: number | null;
  created_at: string;
  updated_at: string;
}

function newId(): string {
  return randomUUID().replace(/-/g, '').slice(0, 12);
}

/** Asks the snapshot's node for its flattened bytes (in the caller's write). */
export function insertExport(tx: Tx, vm: VmRow, snap: SnapshotRow, image: string | null, id = newId()): ExportRow {
  const kind = (tx.db.prepare(`SELECT kind FROM images WHERE name = ?`).get(vm.image) as { kind: 'disk' | 'kernel' } | undefined)?.kind ?? 'disk';
  const row: ExportRow = { id, node: snap.node, vm_id: vm.id, vm_name: vm.name, snapshot_id: snap.id, snapshot_name: snap.name, image, source_image: vm.image, kind, state: 'pending', reason: null, sha256: null, format: null, size_bytes: null, created_at: tx.now, updated_at: tx.now };
  tx.db
    .prepare(`INSERT INTO exports (id, node, vm_id, vm_name, snapshot_id, snapshot_name, image, source_image, kind, state, created_at, updated_at) VALUES (@id, @node, @vm_id, @vm_name, @snapshot_id, @snapshot_name, @image, @source_image, @kind, @state, @created_at, @updated_at)`)
    .run(row);
  tx.touchNode(snap.node);
  return row;
}

/** The pending exports a node is to make: its desired state's `exports`. */
export function nodeExports(db: Tx['db'], node: string): { id: string; vm: string; snapshot: string }[] {
  return (db.prepare(`SELECT id, vm_id, snapshot_id FROM exports WHERE node = ? AND state = 'pending' ORDER BY created_at, rowid`).all(node) as { id: string; vm_id: string; snapshot_id: string }[]).map((r) => ({ id: r.id, vm: r.vm_id, snapshot: r.snapshot_id }));
}

/** A pending snapshot export blocks the snapshot's deletion: its node is reading its file. */
export function exportingSnapshot(db: Tx['db'], snapshotId: string): boolean {
  return db.prepare(`SELECT 1 FROM exports WHERE snapshot_id = ? AND state = 'pending'`).get(snapshotId) !== undefined;
}

/** Whether a blob is a clone's base (so no image removal takes it). */
export function cloneBaseBlob(db: Tx['db'], sha256: string): boolean {
  return db.prepare(`SELECT 1 FROM exports WHERE sha256 = ? AND image IS NULL`).get(sha256) !== undefined;
}

/** The image being made of an export, as listed: `pending`, or `failed` with the reason. */
export function exportImage(r: ExportRow): Image {
  return {
    name: r.image!,
    kind: r.kind,
    status: r.state === 'failed' ? 'failed' : 'pending',
    sha256: null,
    sizeBytes: 0,
    format: null,
    files: {},
    rootFormat: null,
    cmdline: null,
    warm: [],
    vmCount: 0,
    createdAt: r.created_at,
    export: { vm: r.vm_name, snapshot: r.snapshot_name, node: r.node, error: r.reason },
  };
}

/** Ends an export as failed (a clone waiting on it gets its VM's error, with the reason). */
export function failExport(tx: Tx, r: ExportRow, reason: string): void {
  tx.db.prepare(`UPDATE exports SET state = 'failed', reason = ?, updated_at = ? WHERE id = ?`).run(reason, tx.now, r.id);
  if (r.image !== null) {
    tx.event('export-failed', 'image', r.image, `image ${r.image} from vm ${r.vm_name}'s snapshot ${r.snapshot_name} failed: ${reason}`);
    return;
  }
  const clone = tx.db.prepare(`SELECT id, name FROM vms WHERE clone_export = ?`).get(r.id) as { id: string; name: string } | undefined;
  if (!clone) return;
  const why = `its base, a copy of vm ${r.vm_name}'s snapshot ${r.snapshot_name} from node ${r.node}, failed: ${reason}`;
  tx.db.prepare(`UPDATE vms SET state = 'error', reason = ?, updated_at = ? WHERE id = ?`).run(why, tx.now, clone.id);
  tx.event('state', 'vm', clone.name, `vm ${clone.name}: error (${why})`);
}

/** A node that stopped reporting makes none of its pending exports: failed, said so (in the sweep's write). */
export function failNodeExports(tx: Tx, node: string): void {
  const rows = tx.db.prepare(`SELECT * FROM exports WHERE node = ? AND state = 'pending'`).all(node) as ExportRow[];
  for (const r of rows) failExport(tx, r, `node ${node} stopped reporting`);
}

export class Exports {
  constructor(
    private readonly store: Store,
    private readonly images: Images,
    private readonly blobs: BlobFiles,
    private readonly snapshots: Snapshots,
  ) {}

  /** `image create NAME --from-vm VM [--snapshot S]`: 202, the image `pending`. */
  startImage(actor: string, req: ImageFromVm): Image {
    return this.store.write(actor, (tx) => {
      this.images.nameFree(tx, req.name);
      const vm = tx.db.prepare(`SELECT * FROM vms WHERE name = ?`).get(req.vm) as VmRow | undefined;
      if (!vm) throw new ApiError('not_found', `vm ${req.vm} not found`, 'vm');
      this.snapshots.usable(tx, vm, 'vm');
      let snap: SnapshotRow;
      if (req.snapshot !== undefined) {
        snap = this.snapshots.find(vm, req.snapshot, 'snapshot');
        if (snap.state !== 'ready') throw new ApiError('conflict', `snapshot ${snap.name} of vm ${vm.name} is ${snap.state}: only a ready snapshot can be made an image`, 'snapshot');
      } else {
        // As `vm clone` does: a new snapshot, taken in this write (a refused request leaves neither).
        snap = this.snapshots.takeIn(tx, vm, `image-${req.name}`, newId(), 'snapshot');
      }
      const row = insertExport(tx, vm, snap, req.name);
      tx.event('export', 'image', req.name, `image ${req.name}: made from vm ${vm.name}'s snapshot ${snap.name} by node ${snap.node}`);
      return exportImage(row);
    });
  }

  private mine(node: string, id: string): ExportRow {
    const r = this.store.db.prepare(`SELECT * FROM exports WHERE id = ?`).get(id) as ExportRow | undefined;
    // Another node's export is not found here: a node learns nothing of the others'.
    if (!r || r.node !== node) throw new ApiError('not_found', `node ${node} has no export ${id}`, 'id');
    if (r.state !== 'pending') throw new ApiError('conflict', `export ${id} is ${r.state}, not waiting for bytes`, 'id');
    return r;
  }

  /** The node's upload: streamed into the blob store (hashed as it comes; `sha256` must match), then the image is made or the clone's base is ready. */
  async receive(node: string, id: string, sha256: string, body: Readable): Promise<void> {
    const actor = `node:${node}`;
    this.mine(node, id);
    let blob: { sha256: string; sizeBytes: number };
    try {
      blob = await this.blobs.put(body, sha256);
    } catch (e) {
      if (e instanceof ApiError) this.fail(node, id, `upload refused: ${e.message}`, true);
      throw e;
    }
    // Re-read after the (long) upload: it may have failed meanwhile (its node lost, the clone deleted).
    const now = this.store.db.prepare(`SELECT * FROM exports WHERE id = ?`).get(id) as ExportRow | undefined;
    if (now?.state !== 'pending') {
      this.images.dropUnusedBlob(actor, blob.sha256, `export ${id} is no longer pending`);
      throw new ApiError('conflict', `export ${id} is ${now?.state ?? 'gone'}, not waiting for bytes`, 'id');
    }
    this.images.recordBlob(actor, blob.sha256, blob.sizeBytes);
    if (now.image !== null) {
      try {
        await this.images.create(actor, this.imageOf(now, blob.sha256), undefined, { exported: id });
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        this.fail(node, id, e.message, true);
        this.images.dropUnusedBlob(actor, blob.sha256, `image ${now.image} was not made`);
        throw e;
      }
      return;
    }
    const format = this.blobs.format(blob.sha256);
    this.store.write(actor, (tx) => {
      tx.db.prepare(`UPDATE exports SET state = 'ready', sha256 = ?, format = ?, size_bytes = ?, updated_at = ? WHERE id = ?`).run(blob.sha256, format, blob.sizeBytes, tx.now, id);
      const clone = tx.db.prepare(`SELECT name, node FROM vms WHERE clone_export = ?`).get(id) as { name: string; node: string } | undefined;
      if (clone) {
        tx.db.prepare(`UPDATE vms SET reason = NULL WHERE clone_export = ?`).run(id);
        tx.touchNode(clone.node);
        tx.event('clone', 'vm', clone.name, `vm ${clone.name}: its base (vm ${now.vm_name}'s snapshot ${now.snapshot_name}, ${blob.sizeBytes} bytes) arrived from node ${node}`);
      }
    });
  }

  /**
   * What the export makes: a disk image of it; or, for a VM of a kernel image (which boots
   * its kernel and initrd directly, its disk only the root file system), a kernel image with
   * the same kernel, initrd and command line and the export as its root disk.
   */
  private imageOf(r: ExportRow, sha256: string): ImageCreate {
    if (r.kind === 'disk') return { name: r.image!, kind: 'disk', disk: sha256 };
    const src = this.store.db.prepare(`SELECT * FROM images WHERE name = ?`).get(r.source_image) as ImageRow | undefined;
    if (src?.kind !== 'kernel' || !src.kernel || !src.initrd) throw new ApiError('conflict', `image ${r.source_image} (the kernel and initrd of vm ${r.vm_name}) is gone`, 'id');
    return { name: r.image!, kind: 'kernel', kernel: src.kernel, initrd: src.initrd, rootDisk: sha256, ...(src.cmdline !== null ? { cmdline: src.cmdline } : {}) };
  }

  /** The node could not make it (or its upload was refused): failed, with the reason. */
  fail(node: string, id: string, reason: string, quiet = false): void {
    this.store.write(`node:${node}`, (tx) => {
      const r = tx.db.prepare(`SELECT * FROM exports WHERE id = ?`).get(id) as ExportRow | undefined;
      if (!r || r.node !== node) {
        if (quiet) return;
        throw new ApiError('not_found', `node ${node} has no export ${id}`, 'id');
      }
      if (r.state !== 'pending') {
        if (quiet) return;
        throw new ApiError('conflict', `export ${id} is ${r.state}`, 'id');
      }
      failExport(tx, r, reason);
    });
  }

  /** Clones' bases whose clone is gone: the row, and the blob unless an image or another clone uses it. Cheap when there are none. */
  collect(): void {
    const orphans = this.store.db.prepare(`SELECT * FROM exports e WHERE image IS NULL AND NOT EXISTS (SELECT 1 FROM vms v WHERE v.clone_export = e.id)`).all() as ExportRow[];
    if (orphans.length === 0) return;
    const unused = this.store.write('server', (tx) => {
      const out: string[] = [];
      for (const r of orphans) {
        tx.db.prepare(`DELETE FROM exports WHERE id = ?`).run(r.id);
        if (r.sha256 === null || cloneBaseBlob(tx.db, r.sha256) || this.images.blobUsed(tx, r.sha256)) continue;
        tx.db.prepare(`DELETE FROM blobs WHERE sha256 = ?`).run(r.sha256);
        tx.event('delete', 'blob', r.sha256, `blob ${r.sha256.slice(0, 12)} removed: the clone it was the base of is gone`);
        out.push(r.sha256);
      }
      return out;
    });
    for (const s of unused) this.blobs.remove(s);
  }
}
