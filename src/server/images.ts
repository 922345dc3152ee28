/**
 * Images: named bundles of blobs. Removing one is refused while a VM uses it. A disk (or a
 * kernel image's root disk) is inspected in its detected format before the image is made: one
 * that names another file is refused, and its blob dropped (see image-check.ts).
 */
import { createHash } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import type { Image, ImageCreate } from '../api/schemas/image.ts';
import type { DiskFormat } from '../core/image-check.ts';
import type { BlobFiles } from './blobs.ts';
import { imageFromRow, type ImageRow } from './store/rows.ts';
import type { Store } from './store/store.ts';
import { idempotent, type Once } from './idempotency.ts';
import { cloneBaseBlob, exportImage, type ExportRow } from './exports.ts';
import type { Tx } from './store/store.ts';
import { warmStatesOf } from './warm.ts';

/** An image being made where the control plane runs (by `butter up`), before its blobs exist. */
interface Building {
  kind: Image['kind'];
  since: string;
}

/** A disk being imported by URL (image-import.ts), or whose import failed: in memory too, for the same reason. */
export interface Importing {
  since: string;
  url: string;
  bytesDone: number;
  bytesTotal: number | null;
  /** Set once the import failed: the image stays listed as `failed` until deleted or imported again. */
  error: string | null;
}

export class Images {
  /**
   * Held in memory, not in the store: a build belongs to this process (a crash ends it, and
   * the next start begins it again), so nothing stale can outlive it. Creating the image ends it.
   */
  private readonly building = new Map<string, Building>();
  /** Imports under way or failed, by image name (image-import.ts writes them). */
  readonly imports = new Map<string, Importing>();

  constructor(
    private readonly store: Store,
    private readonly blobs: BlobFiles,
  ) {}

  recordBlob(actor: string, sha256: string, sizeBytes: number): void {
    this.store.write(actor, (tx) => {
      tx.db.prepare(`INSERT OR IGNORE INTO blobs (sha256, size_bytes, created_at) VALUES (?, ?, ?)`).run(sha256, sizeBytes, tx.now);
      tx.event('upload', 'blob', sha256, `uploaded blob ${sha256.slice(0, 12)} (${sizeBytes} bytes)`);
    });
  }

  list(): Image[] {
    const rows = this.store.db.prepare(`SELECT * FROM images ORDER BY name`).all() as ImageRow[];
    const made = rows.map((r) => this.toApi(r));
    const pending = [...this.building].filter(([name]) => !rows.some((r) => r.name === name)).map(([name, b]) => buildingImage(name, b));
    pending.push(...[...this.imports].filter(([name]) => !rows.some((r) => r.name === name)).map(([name, i]) => importingImage(name, i)));
    pending.push(...(this.store.db.prepare(`SELECT * FROM exports WHERE image IS NOT NULL`).all() as ExportRow[]).filter((e) => !rows.some((r) => r.name === e.image)).map(exportImage));
    return [...made, ...pending].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get(name: string): Image {
    const r = this.find(name);
    const b = this.building.get(name);
    if (!r && b) return buildingImage(name, b);
    const i = this.imports.get(name);
    if (!r && i) return importingImage(name, i);
    const e = r ? undefined : this.exportOf(name);
    if (e) return exportImage(e);
    return this.toApi(this.row(name));
  }

  /** The image to make a VM of: one still being built is refused (409), saying so. */
  row(name: string): ImageRow {
    const r = this.find(name);
    if (r) return r;
    const b = this.building.get(name);
    if (b) throw new ApiError('conflict', `image ${name} is being built (since ${b.since}); try again when \`butter image list\` shows it ready`, 'image');
    const i = this.imports.get(name);
    if (i?.error === null) throw new ApiError('conflict', `image ${name} is being imported (${i.bytesDone} bytes so far); try again when \`butter image show ${name}\` shows it ready`, 'image');
    if (i) throw new ApiError('conflict', `image ${name} failed to import (${i.error}); delete it and import it again`, 'image');
    const e = this.exportOf(name);
    if (e?.state === 'pending') throw new ApiError('conflict', `image ${name} is being made from vm ${e.vm_name}'s snapshot ${e.snapshot_name} on node ${e.node}; try again when \`butter image show ${name}\` shows it ready`, 'image');
    if (e) throw new ApiError('conflict', `image ${name} could not be made from vm ${e.vm_name} (${e.reason}); delete it and make it again`, 'image');
    throw new ApiError('not_found', `image ${name} not found`, 'image');
  }

  /** An image being made from a VM (exports.ts), or whose making failed. */
  private exportOf(name: string): ExportRow | undefined {
    return this.store.db.prepare(`SELECT * FROM exports WHERE image = ?`).get(name) as ExportRow | undefined;
  }

  /** Refuses a name already an image's, or one being built, imported or made from a VM (or failed so: delete it first). */
  nameFree(tx: Tx, name: string): void {
    if (tx.db.prepare(`SELECT 1 FROM images WHERE name = ?`).get(name)) throw new ApiError('conflict', `image ${name} already exists`, 'name');
    if (this.building.has(name)) throw new ApiError('conflict', `image ${name} is being built`, 'name');
    if (this.imports.has(name)) throw new ApiError('conflict', `image ${name} is being imported (or its import failed: delete it first)`, 'name');
    const e = tx.db.prepare(`SELECT state FROM exports WHERE image = ?`).get(name) as { state: string } | undefined;
    if (e) throw new ApiError('conflict', `image ${name} is ${e.state === 'pending' ? 'being made from a VM' : 'a failed make from a VM: delete it first'}`, 'name');
  }

  /** Whether an image names the blob (disk, kernel, initrd or root disk) or a clone stands on it. */
  blobUsed(tx: Tx, sha256: string): boolean {
    return tx.db.prepare(`SELECT 1 FROM images WHERE ? IN (disk, kernel, initrd, root_disk)`).get(sha256) !== undefined || cloneBaseBlob(tx.db, sha256);
  }

  private find(name: string): ImageRow | undefined {
    return this.store.db.prepare(`SELECT * FROM images WHERE name = ?`).get(name) as ImageRow | undefined;
  }

  /** `name` is being built here: listed as `building` until it is created or the build is abandoned. */
  startBuilding(name: string, kind: Image['kind']): void {
    this.building.set(name, { kind, since: this.store.now() });
  }

  /** The build ended without making the image (it failed). */
  abandonBuilding(name: string): void {
    this.building.delete(name);
  }

  exists(name: string): boolean {
    return this.find(name) !== undefined;
  }

  isBuilding(name: string): boolean {
    return this.building.has(name);
  }

  /** `from.importing`: the import of this name (image-import.ts) makes it; anyone else must wait for that. */
  /** `from.exported`: the export (exports.ts) of this name makes it, and its row goes in the same write. */
  async create(actor: string, req: ImageCreate, once?: Once, from: { importing?: boolean; exported?: string } = {}): Promise<Image> {
    if (!from.importing && this.imports.get(req.name)?.error === null) throw new ApiError('conflict', `image ${req.name} is being imported`, 'name');
    if (from.exported === undefined && this.exportOf(req.name)) throw new ApiError('conflict', `image ${req.name} is being made from a VM (or failed so: delete it first)`, 'name');
    const need = (sha: string | undefined, field: string) => {
      if (sha === undefined) return null;
      const known = this.store.db.prepare(`SELECT 1 FROM blobs WHERE sha256 = ?`).get(sha);
      if (!known || !this.blobs.has(sha)) throw new ApiError('invalid', `no uploaded blob with sha256 ${sha}`, field);
      return sha;
    };
    const row: ImageRow =
      req.kind === 'disk'
        ? { name: req.name, kind: 'disk', sha256: req.disk, format: null, disk: need(req.disk, 'disk'), kernel: null, initrd: null, root_disk: null, root_format: null, cmdline: null, created_at: '' }
        : {
            name: req.name,
            kind: 'kernel',
            sha256: manifestDigest(req),
            format: null,
            disk: null,
            kernel: need(req.kernel, 'kernel'),
            initrd: need(req.initrd, 'initrd'),
            root_disk: need(req.rootDisk, 'rootDisk'),
            root_format: null,
            cmdline: req.cmdline ?? null,
            created_at: '',
          };
    // The format is detected once, here, and forced wherever the disk is opened from now on.
    if (row.disk !== null) row.format = await this.checkDisk(actor, row.disk, 'disk');
    if (row.root_disk !== null) row.root_format = await this.checkDisk(actor, row.root_disk, 'rootDisk');
    const image = this.store.write(actor, idempotent(once, (tx) => {
      if (tx.db.prepare(`SELECT 1 FROM images WHERE name = ?`).get(req.name)) throw new ApiError('conflict', `image ${req.name} already exists`, 'name');
      // The inspection awaited: a blob removed meanwhile (with the last image using it) is gone.
      for (const [sha, field] of [[row.disk, 'disk'], [row.kernel, 'kernel'], [row.initrd, 'initrd'], [row.root_disk, 'rootDisk']] as const) {
        if (sha !== null && !tx.db.prepare(`SELECT 1 FROM blobs WHERE sha256 = ?`).get(sha)) throw new ApiError('invalid', `no uploaded blob with sha256 ${sha}`, field);
      }
      if (from.exported !== undefined) tx.db.prepare(`DELETE FROM exports WHERE id = ?`).run(from.exported);
      row.created_at = tx.now;
      tx.db
        .prepare(`INSERT INTO images (name, kind, sha256, format, disk, kernel, initrd, root_disk, root_format, cmdline, created_at) VALUES (@name, @kind, @sha256, @format, @disk, @kernel, @initrd, @root_disk, @root_format, @cmdline, @created_at)`)
        .run(row);
      tx.event('create', 'image', req.name, `image ${req.name} (${req.kind}) sha256:${row.sha256.slice(0, 12)}`);
      return this.toApi(row);
    }));
    // The image a build was making now exists (committed, in the same turn of the event loop):
    // no request sees it neither building nor there.
    this.building.delete(req.name);
    this.imports.delete(req.name);
    return image;
  }

  remove(actor: string, name: string): void {
    // A failed import is only a name with its reason: removing it clears it.
    const exp = this.find(name) ? undefined : this.exportOf(name);
    if (exp) {
      if (exp.state === 'pending') throw new ApiError('conflict', `image ${name} is being made from vm ${exp.vm_name}: wait until it is ready or failed`, 'name');
      this.store.write(actor, (tx) => {
        tx.db.prepare(`DELETE FROM exports WHERE id = ?`).run(exp.id);
        tx.event('delete', 'image', name, `failed image ${name} (from vm ${exp.vm_name}) cleared`);
      });
      return;
    }
    const imp = this.imports.get(name);
    if (imp && !this.find(name)) {
      if (imp.error === null) throw new ApiError('conflict', `image ${name} is being imported: wait until it is ready or failed`, 'name');
      this.store.write(actor, (tx) => tx.event('delete', 'image', name, `failed import of ${name} cleared`));
      this.imports.delete(name);
      return;
    }
    const orphans = this.store.write(actor, (tx) => {
      const row = this.row(name);
      const users = tx.db.prepare(`SELECT name FROM vms WHERE image = ? ORDER BY name`).all(name) as { name: string }[];
      if (users.length) throw new ApiError('conflict', `image ${name} is used by VM ${users.map((u) => u.name).join(', ')}`, 'name');
      tx.db.prepare(`DELETE FROM images WHERE name = ?`).run(name);
      // Its warm states go with it: their nodes delete the files (no VM stands on them: none uses the image).
      for (const w of tx.db.prepare(`SELECT DISTINCT node FROM image_warm WHERE image = ?`).all(name) as { node: string }[]) tx.touchNode(w.node);
      tx.db.prepare(`DELETE FROM image_warm WHERE image = ?`).run(name);
      tx.event('delete', 'image', name, `image ${name} removed`);
      // Blobs no image references any more go too: the store is content-addressed.
      const shas = [row.disk, row.kernel, row.initrd, row.root_disk].filter((s): s is string => s !== null);
      const unused = shas.filter((s) => !this.blobUsed(tx, s));
      for (const s of unused) tx.db.prepare(`DELETE FROM blobs WHERE sha256 = ?`).run(s);
      return unused;
    });
    for (const s of orphans) this.blobs.remove(s);
  }

  /** A blob recorded for an image that was not made: deleted unless an image uses it. */
  dropUnusedBlob(actor: string, sha256: string, reason: string): void {
    const unused = this.store.write(actor, (tx) => {
      if (this.blobUsed(tx, sha256)) return false;
      tx.db.prepare(`DELETE FROM blobs WHERE sha256 = ?`).run(sha256);
      tx.event('delete', 'blob', sha256, `blob ${sha256.slice(0, 12)} removed: ${reason}`);
      return true;
    });
    if (unused) this.blobs.remove(sha256);
  }

  /** The disk's format once qemu-img finds it self-contained; a refused blob is not kept, unless another image uses it. */
  private async checkDisk(actor: string, sha256: string, field: string): Promise<DiskFormat> {
    try {
      return await this.blobs.check(sha256, field);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      const unused = this.store.write(actor, (tx) => {
        if (this.blobUsed(tx, sha256)) return false;
        tx.db.prepare(`DELETE FROM blobs WHERE sha256 = ?`).run(sha256);
        tx.event('delete', 'blob', sha256, `refused blob ${sha256.slice(0, 12)} removed: ${e.message}`);
        return true;
      });
      if (unused) this.blobs.remove(sha256);
      throw e;
    }
  }

  private toApi(r: ImageRow): Image {
    const shas = [r.disk, r.kernel, r.initrd, r.root_disk].filter((s): s is string => s !== null);
    const sizes = new Map<string, number>();
    for (const s of shas) {
      const b = this.store.db.prepare(`SELECT size_bytes FROM blobs WHERE sha256 = ?`).get(s) as { size_bytes: number } | undefined;
      if (b) sizes.set(s, b.size_bytes);
    }
    const count = (this.store.db.prepare(`SELECT COUNT(*) AS n FROM vms WHERE image = ?`).get(r.name) as { n: number }).n;
    return { ...imageFromRow(r, sizes, count), warm: warmStatesOf(this.store.db, r.name) };
  }
}

function buildingImage(name: string, b: Building): Image {
  return { name, kind: b.kind, status: 'building', sha256: null, sizeBytes: 0, format: null, files: {}, rootFormat: null, cmdline: null, vmCount: 0, warm: [], createdAt: b.since };
}

function importingImage(name: string, i: Importing): Image {
  return {
    name,
    kind: 'disk',
    status: i.error === null ? 'importing' : 'failed',
    sha256: null,
    sizeBytes: i.bytesDone,
    format: null,
    files: {},
    rootFormat: null,
    cmdline: null,
    vmCount: 0,
    warm: [],
    createdAt: i.since,
    import: { url: i.url, bytesDone: i.bytesDone, bytesTotal: i.bytesTotal, error: i.error },
  };
}

/** A kernel image's digest covers all its parts and its command line. */
function manifestDigest(req: Extract<ImageCreate, { kind: 'kernel' }>): string {
  const manifest = JSON.stringify({ kernel: req.kernel, initrd: req.initrd, rootDisk: req.rootDisk ?? null, cmdline: req.cmdline ?? null });
  return createHash('sha256').update(manifest).digest('hex');
}
