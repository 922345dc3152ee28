/**
 * A QEMU VM's root disk as a chain of qcow2 layers, for disk snapshots (issue 16).
 *
 * Layout in the VM's directory:
 * - `layers/<name>.qcow2`: every layer ever made; a layer's file never moves or changes name;
 * - `snapshots/<snapshot id>.qcow2`: a symlink to the layer that snapshot froze;
 * - `disk.qcow2`: a symlink to the active layer (QEMU is launched on its real path).
 *
 * Why no layer is ever renamed: after `blockdev-snapshot-sync` QEMU reopens the old image
 * read-only *by its file name* (file-posix cannot change an fd's access mode), so a file renamed
 * under a running QEMU would have it open whatever now has that name. So a snapshot leaves the
 * old layer where it is, and only the symlinks move (atomically: a new link renamed over).
 *
 * Taking one of a running VM: the new layer is made first (`qemu-img create -u`, the backing
 * is in use), then QMP `stop`, `blockdev-snapshot-sync` (mode `existing`: our file, whose
 * header names the old layer by its real path), the links, `cont`. The pause is from `stop`
 * to `cont`'s answer. A stopped VM's is the same without QEMU. Restore: a new layer on the
 * snapshot's, made active; the discarded active layer is deleted (nothing stands on an active
 * layer). A clone's first layer stands on another VM's snapshot layer (same host).
 *
 * A disk made before this layout (a regular `disk.qcow2`) moves into `layers/` at the VM's
 * next start (QEMU is not running then); until then a running one cannot be snapshotted.
 */
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, realpathSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { basename, dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { backingRange, QCOW2_HEADER_BYTES } from '../../core/qcow2-header.ts';
import type { VmPaths } from '../../core/qemu-args.ts';
import type { Exec } from './exec.ts';
import { QmpClient } from './qmp.ts';

const SNAPSHOT_ID = /^[a-z0-9]{1,32}$/;

export interface LayerPaths {
  layers: string;
  snapshots: string;
}

export function layerPaths(p: VmPaths): LayerPaths {
  return { layers: `${p.dir}/layers`, snapshots: `${p.dir}/snapshots` };
}

export function snapshotLink(p: VmPaths, snapshot: string): string {
  if (!SNAPSHOT_ID.test(snapshot)) throw new Error(`invalid snapshot id: ${JSON.stringify(snapshot)}`);
  return `${layerPaths(p).snapshots}/${snapshot}.qcow2`;
}

export function isLayered(p: VmPaths): boolean {
  try {
    return lstatSync(p.disk).isSymbolicLink();
  } catch {
    return false;
  }
}

/** The file QEMU is to open: the active layer's real path (never the link: see the top). */
export function activeDisk(p: VmPaths): string {
  return isLayered(p) ? realpathSync(p.disk) : p.disk;
}

function newLayer(p: VmPaths, name = randomUUID().slice(0, 8)): string {
  const l = layerPaths(p);
  mkdirSync(l.layers, { recursive: true, mode: 0o700 });
  chmodSync(l.layers, 0o700);
  // Real paths throughout: QEMU names its drives by them, and headers are compared by them.
  return `${realpathSync(l.layers)}/${name}.qcow2`;
}

/** Points `link` at `target` (relative to the VM's dir) atomically. */
function relink(link: string, target: string): void {
  const tmp = `${link}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}

/** A layer's path as the links name it: relative to the VM's directory. */
function relTarget(p: VmPaths, layer: string, from: 'dir' | 'snapshots'): string {
  return from === 'dir' ? `layers/${basename(layer)}` : `../layers/${basename(layer)}`;
}

export interface QemuDisksOptions {
  exec: Exec;
  stateDir: string;
  paths: (id: string) => VmPaths;
  /** The live QEMU's pid, if the VM runs. */
  livePid: (id: string) => number | undefined;
  log?: (msg: string) => void;
}

export class QemuDisks {
  constructor(private readonly o: QemuDisksOptions) {}

  hasDisk(id: string): boolean {
    return existsSync(this.o.paths(id).disk);
  }

  /**
   * Makes a new VM's disk: the `initial` layer (empty, on the image or the clone's snapshot),
   * its snapshot link, and the active layer on it. `base`: what the first layer stands on.
   */
  async create(p: VmPaths, base: { file: string; format: string } | undefined, sizeBytes: number, initial: string | undefined, undo: (f: () => void) => void): Promise<void> {
    undo(() => rmSync(layerPaths(p).layers, { recursive: true, force: true }));
    undo(() => rmSync(layerPaths(p).snapshots, { recursive: true, force: true }));
    undo(() => rmSync(p.disk, { force: true }));
    let below = base;
    if (initial !== undefined) {
      const first = newLayer(p, `i-${initial}`);
      await this.qcow2(first, below, sizeBytes);
      this.linkSnapshot(p, initial, first);
      below = { file: first, format: 'qcow2' };
    }
    const active = newLayer(p);
    await this.qcow2(active, below, sizeBytes);
    relink(p.disk, relTarget(p, active, 'dir'));
  }

  /** A regular `disk.qcow2` (from before layers) moves into `layers/`: only with QEMU not running. */
  adopt(p: VmPaths): void {
    if (!existsSync(p.disk) || isLayered(p)) return;
    const layer = newLayer(p);
    renameSync(p.disk, layer);
    relink(p.disk, relTarget(p, layer, 'dir'));
  }

  /** Before a start, once per generation: the disk becomes a new overlay on the snapshot. */
  async restore(p: VmPaths, snapshot: string, sizeBytes: number): Promise<void> {
    const link = snapshotLink(p, snapshot);
    if (!existsSync(link)) throw new Error(`snapshot ${snapshot} is not on this host`);
    this.adopt(p);
    const frozen = realpathSync(link);
    const old = isLayered(p) ? realpathSync(p.disk) : undefined;
    const active = newLayer(p);
    try {
      await this.qcow2(active, { file: frozen, format: 'qcow2' }, Math.max(sizeBytes, await this.virtualSize(frozen, false)));
    } catch (e) {
      rmSync(active, { force: true });
      throw e;
    }
    relink(p.disk, relTarget(p, active, 'dir'));
    // The discarded active layer: no snapshot froze it, nothing stands on it.
    if (old && old !== frozen && !this.frozenLayers(p).has(old)) rmSync(old, { force: true });
  }

  async list(id: string): Promise<string[]> {
    try {
      return readdirSync(layerPaths(this.o.paths(id)).snapshots)
        .filter((f) => f.endsWith('.qcow2'))
        .map((f) => f.slice(0, -'.qcow2'.length))
        .filter((s) => SNAPSHOT_ID.test(s))
        .sort();
    } catch {
      return [];
    }
  }

  async take(id: string, snapshot: string): Promise<{ pauseMs?: number; sizeBytes?: number }> {
    const p = this.o.paths(id);
    const link = snapshotLink(p, snapshot);
    if (existsSync(link)) return {};
    if (!existsSync(p.disk)) throw new Error('the VM has no disk yet');
    const pid = this.o.livePid(id);
    if (pid !== undefined && !isLayered(p)) throw new Error('its disk was made by an older agent: it can be snapshotted after its next start');
    if (pid === undefined) this.adopt(p);
    const old = realpathSync(p.disk);
    const size = await this.virtualSize(old, pid !== undefined);
    const active = newLayer(p);
    let pauseMs: number | undefined;
    // Once QEMU writes to the new layer, it is the disk: never removed, whatever fails after.
    let switched = false;
    try {
      // -u: the backing is QEMU's (locked) while it runs; the size is given, so it need not be opened.
      await this.qcow2(active, { file: old, format: 'qcow2' }, size, pid !== undefined);
      if (pid === undefined) {
        this.linkSnapshot(p, snapshot, old);
        relink(p.disk, relTarget(p, active, 'dir'));
      } else {
        pauseMs = await this.live(p, old, active, () => {
          switched = true;
          // Inside the pause, right after QEMU switched: the links say what QEMU now writes.
          this.linkSnapshot(p, snapshot, old);
          relink(p.disk, relTarget(p, active, 'dir'));
        });
      }
    } catch (e) {
      if (!switched && realpathSync(p.disk) !== active) rmSync(active, { force: true });
      throw e;
    }
    return { ...(pauseMs !== undefined ? { pauseMs } : {}), sizeBytes: statSync(old).size };
  }

  /** stop, external snapshot onto `active`, `switched()`, cont; the ms from stop to cont's answer. */
  private async live(p: VmPaths, old: string, active: string, switched: () => void): Promise<number> {
    const client = await QmpClient.connect(p.qmpSock, 5000);
    try {
      const blocks = (await client.execute('query-block')) as { device: string; inserted?: { file?: string } }[];
      const root = blocks.find((b) => b.inserted?.file === old);
      if (!root) throw new Error(`QEMU has no drive on ${old}`);
      const t0 = performance.now();
      await client.execute('stop');
      try {
        await client.execute('blockdev-snapshot-sync', { device: root.device, 'snapshot-file': active, format: 'qcow2', mode: 'existing' });
        switched();
      } finally {
        await client.execute('cont');
      }
      return Math.round((performance.now() - t0) * 100) / 100;
    } finally {
      client.close();
    }
  }

  /** Refused while the active disk, another snapshot or a clone on this host stands on its layer. */
  async remove(id: string, snapshot: string): Promise<void> {
    const p = this.o.paths(id);
    const link = snapshotLink(p, snapshot);
    if (!existsSync(link)) {
      rmSync(link, { force: true });
      return;
    }
    const layer = realpathSync(link);
    const users = this.standingOn(layer);
    if (users.length) throw new Error(`${users.map((u) => u.slice(this.o.stateDir.length + 1)).join(', ')} stand${users.length > 1 ? '' : 's'} on it`);
    rmSync(link, { force: true });
    // Another snapshot link may name the same layer (none does today); keep it then.
    if (!this.frozenLayers(p).has(layer)) rmSync(layer, { force: true });
  }

  /** Every qcow2 layer on this host (of every VM) whose header names `layer` as its backing file. */
  standingOn(layer: string): string[] {
    const out: string[] = [];
    let vms: string[];
    try {
      vms = readdirSync(`${this.o.stateDir}/vms`);
    } catch {
      return out;
    }
    for (const vm of vms) {
      const dir = `${this.o.stateDir}/vms/${vm}`;
      const files: string[] = [];
      try {
        for (const f of readdirSync(`${dir}/layers`)) if (f.endsWith('.qcow2')) files.push(`${dir}/layers/${f}`);
      } catch {
        // No layers: an older disk, or none.
      }
      try {
        if (lstatSync(`${dir}/disk.qcow2`).isFile()) files.push(`${dir}/disk.qcow2`);
      } catch {
        // No disk.
      }
      for (const f of files) {
        const b = backingOf(f);
        if (b !== null && b === layer) out.push(f);
      }
    }
    return out;
  }

  /** The layers this VM's snapshot links name. */
  private frozenLayers(p: VmPaths): Set<string> {
    const out = new Set<string>();
    try {
      for (const f of readdirSync(layerPaths(p).snapshots)) {
        try {
          out.add(realpathSync(resolve(layerPaths(p).snapshots, readlinkSync(`${layerPaths(p).snapshots}/${f}`))));
        } catch {
          // Not a link.
        }
      }
    } catch {
      // No snapshots.
    }
    return out;
  }

  private linkSnapshot(p: VmPaths, snapshot: string, layer: string): void {
    const dir = layerPaths(p).snapshots;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    relink(snapshotLink(p, snapshot), relTarget(p, layer, 'snapshots'));
  }

  private async qcow2(file: string, backing: { file: string; format: string } | undefined, sizeBytes: number, unsafe = false): Promise<void> {
    const args = ['create', '-f', 'qcow2', ...(backing ? ['-F', backing.format, '-b', backing.file] : []), ...(unsafe ? ['-u'] : []), file, String(sizeBytes)];
    await this.o.exec.run('qemu-img', args);
    chmodSync(file, 0o600); // qemu-img creates it with the umask's mode
  }

  /** `shared`: the image is open in a running QEMU (its lock), read it anyway (-U). */
  async virtualSize(file: string, shared: boolean): Promise<number> {
    const r = await this.o.exec.run('qemu-img', ['info', '--output=json', ...(shared ? ['-U'] : []), '-f', 'qcow2', file]);
    const size = (JSON.parse(r.stdout) as { 'virtual-size'?: unknown })['virtual-size'];
    if (typeof size !== 'number') throw new Error(`qemu-img info ${file}: no virtual-size`);
    return size;
  }
}

/** The backing file a qcow2 file's header names, resolved as QEMU resolves it (relative to the file), or null. */
export function backingOf(file: string): string | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const head = Buffer.alloc(QCOW2_HEADER_BYTES);
    if (readSync(fd, head, 0, head.length, 0) < head.length) return null;
    const range = backingRange(head);
    if (!range) return null;
    const name = Buffer.alloc(range.length);
    readSync(fd, name, 0, range.length, range.offset);
    const path = resolve(dirname(file), name.toString('utf8'));
    try {
      return realpathSync(path);
    } catch {
      return path;
    }
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}
