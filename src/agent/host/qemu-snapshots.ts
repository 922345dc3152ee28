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
import { chmodSync, closeSync, existsSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, realpathSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { basename, dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { backingRange, QCOW2_HEADER_BYTES } from '../../core/qcow2-header.ts';
import { detectFormat, FORMAT_HEAD_BYTES } from '../../core/image-check.ts';
import type { VmPaths } from '../../core/qemu-args.ts';
import type { Exec } from './exec.ts';
import { QmpClient, setMigrationCapability, waitMigration, withTimeout, type QmpEvent } from './qmp.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const SNAPSHOT_ID = /^[a-z0-9]{1,32}$/;
/** Saving a memory state: 256 MB takes about a second under TCG; a wedged one is given up. */
const MEMORY_TIMEOUT_MS = 120_000;
/** How often a migration's progress is asked. */
const POLL_MS = 20;

export interface TakeResult {
  /** How long the guest was paused (a running VM). */
  pauseMs?: number;
  /** The frozen layer's size. */
  sizeBytes?: number;
  /** A memory snapshot: its state file's size. */
  memoryBytes?: number;
}

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

/**
 * The RAM and device state saved with a memory snapshot (`vm snapshot --memory`): beside the
 * snapshot's link, a regular file (0600). A restore or a warm start launches QEMU from it
 * (`QemuDriver.launchFromMemory`) on a layer over the snapshot's; it is kept until the snapshot goes.
 */
export function memorySnapshotPath(p: VmPaths, snapshot: string): string {
  if (!SNAPSHOT_ID.test(snapshot)) throw new Error(`invalid snapshot id: ${JSON.stringify(snapshot)}`);
  return `${layerPaths(p).snapshots}/${snapshot}.memory`;
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
    const active = newLayer(p);
    if (initial === undefined) {
      await this.qcow2(active, base, sizeBytes);
    } else {
      const first = newLayer(p, `i-${initial}`);
      // Side by side (a VM's start waits for both: a warm start's largest host step after
      // QEMU): the active layer's size is given, so qemu-img need not open its backing file
      // (-u), which the other is still making. The first layer opens the image: it checks it.
      await Promise.all([this.qcow2(first, base, sizeBytes), this.qcow2(active, { file: first, format: 'qcow2' }, sizeBytes, true)]);
      this.linkSnapshot(p, initial, first);
    }
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

  /**
   * `memory`: also the guest's RAM and device state, at the same instant as the disk (see
   * `liveWithMemory`), into `snapshots/<id>.memory`; only of a running VM.
   */
  async take(id: string, snapshot: string, opts: { memory?: boolean } = {}): Promise<TakeResult> {
    const p = this.o.paths(id);
    const link = snapshotLink(p, snapshot);
    // The memory state is in place before the link is made: a link means a whole snapshot.
    if (existsSync(link)) return {};
    if (!existsSync(p.disk)) throw new Error('the VM has no disk yet');
    const pid = this.o.livePid(id);
    if (opts.memory && pid === undefined) throw new Error('the VM is not running: a memory snapshot is of a running guest');
    if (pid !== undefined && !isLayered(p)) throw new Error('its disk was made by an older agent: it can be snapshotted after its next start');
    if (pid === undefined) this.adopt(p);
    const old = realpathSync(p.disk);
    const size = await this.virtualSize(old, pid !== undefined);
    const active = newLayer(p);
    let pauseMs: number | undefined;
    let memoryBytes: number | undefined;
    // Once QEMU writes to the new layer, it is the disk: never removed, whatever fails after.
    let switched = false;
    try {
      // -u: the backing is QEMU's (locked) while it runs; the size is given, so it need not be opened.
      await this.qcow2(active, { file: old, format: 'qcow2' }, size, pid !== undefined);
      if (pid === undefined) {
        this.linkSnapshot(p, snapshot, old);
        relink(p.disk, relTarget(p, active, 'dir'));
      } else if (!opts.memory) {
        pauseMs = await this.live(p, old, active, () => {
          switched = true;
          // Inside the pause, right after QEMU switched: the links say what QEMU now writes.
          this.linkSnapshot(p, snapshot, old);
          relink(p.disk, relTarget(p, active, 'dir'));
        });
      } else {
        const state = memorySnapshotPath(p, snapshot);
        const r = await this.liveWithMemory(p, old, active, state, () => {
          switched = true;
          // The disk's links now, the snapshot's once its memory state is whole (below).
          relink(p.disk, relTarget(p, active, 'dir'));
        });
        pauseMs = r.pauseMs;
        memoryBytes = r.memoryBytes;
        this.linkSnapshot(p, snapshot, old);
      }
    } catch (e) {
      if (!switched && realpathSync(p.disk) !== active) rmSync(active, { force: true });
      throw e;
    }
    return { ...(pauseMs !== undefined ? { pauseMs } : {}), sizeBytes: statSync(old).size, ...(memoryBytes !== undefined ? { memoryBytes } : {}) };
  }

  /**
   * A memory snapshot of a running guest: its RAM and device state and its disk at one
   * instant, the vCPUs stopped in between. QMP `migrate` (live, to `exec:cat > TMP`) with the
   * capability `pause-before-switchover`: the guest runs while its RAM is copied; at the end
   * QEMU stops the vCPUs (and drains and flushes the disks) and waits in `pre-switchover`, its
   * disks still active. There the disk snapshot is taken (`blockdev-snapshot-sync`, as
   * `live`); `migrate-continue` then writes the last dirty pages and the devices' state, all
   * of that same stopped instant, and `cont` runs the guest on the new layer. (After the
   * migration completes QEMU has inactivated its disks, so the disk snapshot is not left for
   * then; and a migration of a guest stopped first would pause it for the whole copy.)
   * The pause is QEMU's own: from its STOP event to its RESUME event. The file is written as
   * `.tmp`, fsynced and renamed once whole. Anything failing cancels the migration (QEMU then
   * runs the guest again) and continues the guest; the file is removed.
   */
  private async liveWithMemory(p: VmPaths, old: string, active: string, state: string, switched: () => void): Promise<{ pauseMs: number; memoryBytes: number }> {
    const tmp = `${state}.tmp`;
    mkdirSync(layerPaths(p).snapshots, { recursive: true, mode: 0o700 });
    rmSync(tmp, { force: true });
    closeSync(openSync(tmp, 'w', 0o600)); // cat > keeps the mode of a file that exists
    chmodSync(tmp, 0o600);
    const client = await QmpClient.connect(p.qmpSock, 5000);
    let stoppedAt: number | undefined;
    let resumedAt: number | undefined;
    const at = (e: QmpEvent) => (e.timestamp ? e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000 : performance.timeOrigin + performance.now());
    client.onEvent = (e) => {
      if (e.event === 'STOP') stoppedAt ??= at(e);
      else if (e.event === 'RESUME' && stoppedAt !== undefined) resumedAt ??= at(e);
    };
    let migrating = false;
    let t0: number | undefined;
    try {
      const blocks = (await client.execute('query-block')) as { device: string; inserted?: { file?: string } }[];
      const root = blocks.find((b) => b.inserted?.file === old);
      if (!root) throw new Error(`QEMU has no drive on ${old}`);
      await setMigrationCapability(client, 'pause-before-switchover', true);
      migrating = true;
      await withTimeout(client.execute('migrate', { uri: `exec:cat > ${shellQuote(tmp)}` }), 5000);
      const paused = await waitMigration(client, 'pre-switchover', MEMORY_TIMEOUT_MS, POLL_MS);
      t0 = performance.now();
      if (paused !== 'pre-switchover') throw new Error(`saving the memory state ${paused === undefined ? `took over ${MEMORY_TIMEOUT_MS} ms` : `ended ${paused}`}`);
      await client.execute('blockdev-snapshot-sync', { device: root.device, 'snapshot-file': active, format: 'qcow2', mode: 'existing' });
      switched();
      await withTimeout(client.execute('migrate-continue', { state: 'pre-switchover' }), 5000);
      const done = await waitMigration(client, 'completed', MEMORY_TIMEOUT_MS, POLL_MS);
      if (done !== 'completed') throw new Error(`saving the memory state ${done === undefined ? `took over ${MEMORY_TIMEOUT_MS} ms` : `ended ${done}`}`);
      migrating = false;
      await withTimeout(client.execute('cont'), 5000);
      const t1 = performance.now();
      const memoryBytes = syncedSize(tmp);
      renameSync(tmp, state);
      // The RESUME event may trail cont's answer by a moment.
      for (let i = 0; i < 20 && resumedAt === undefined; i++) await sleep(10);
      const pauseMs = stoppedAt !== undefined && resumedAt !== undefined ? resumedAt - stoppedAt : t1 - t0;
      return { pauseMs: Math.round(pauseMs * 100) / 100, memoryBytes };
    } catch (e) {
      rmSync(tmp, { force: true });
      // Cancelled in pre-switchover, QEMU runs the guest again itself; cont covers every other end.
      if (migrating) await client.execute('migrate_cancel').catch(() => undefined);
      await client.execute('cont').catch(() => undefined);
      throw e;
    } finally {
      // Off again: a later `vm suspend` (a plain migrate) must not stop at pre-switchover.
      await setMigrationCapability(client, 'pause-before-switchover', false).catch(() => undefined);
      client.close();
    }
  }

  /**
   * `qemu-img convert` of the snapshot's layer: its whole chain (the image or a clone's base
   * under it) read through and written as one qcow2 with no backing file. `-U`: a running
   * QEMU holds the layer open (read-only, as a backing file); a snapshot's layer is frozen, so
   * reading it while shared is consistent.
   */
  async export(id: string, snapshot: string, dest: string): Promise<void> {
    const link = snapshotLink(this.o.paths(id), snapshot);
    if (!existsSync(link)) throw new Error(`snapshot ${snapshot} is not on this host`);
    await this.o.exec.run('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'qcow2', realpathSync(link), dest]);
    chmodSync(dest, 0o600);
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

  /**
   * Refused while the active disk, another snapshot or a clone on this host stands on its
   * layer. `merge`: this VM's own layers that stand on it are first made to stand on its
   * parent instead, with the snapshot's data copied into them (`mergeInto`); another VM's
   * (a clone's) still refuse it.
   */
  async remove(id: string, snapshot: string, merge = false): Promise<void> {
    const p = this.o.paths(id);
    const link = snapshotLink(p, snapshot);
    if (!existsSync(link)) {
      rmSync(link, { force: true });
      rmSync(memorySnapshotPath(p, snapshot), { force: true });
      return;
    }
    const layer = realpathSync(link);
    if (merge) await this.mergeInto(p, id, layer);
    const users = this.standingOn(layer);
    if (users.length) throw new Error(`${users.map((u) => u.slice(this.o.stateDir.length + 1)).join(', ')} stand${users.length > 1 ? '' : 's'} on it`);
    rmSync(link, { force: true });
    rmSync(memorySnapshotPath(p, snapshot), { force: true });
    // Another snapshot link may name the same layer (none does today); keep it then.
    if (!this.frozenLayers(p).has(layer)) rmSync(layer, { force: true });
  }

  /**
   * Merge on delete: every layer of this VM standing on `layer` gets its data and stands on
   * `layer`'s own backing file. Never a commit into the parent: other layers (snapshots, clones)
   * may stand on the parent, and it must not change under them. A stopped VM: `qemu-img
   * rebase` (safe mode: what differs between the old and the new backing is copied into the
   * layer, so what it shows is unchanged). A running one: only its active layer can take the
   * data (QMP `block-stream` down to the parent, the job waited for); a frozen layer of a
   * running VM is open in QEMU and is not rewritten under it: refused, the snapshot stays.
   */
  private async mergeInto(p: VmPaths, id: string, layer: string): Promise<void> {
    const users = this.standingOn(layer);
    const mine = users.filter((f) => f.startsWith(`${realpathSync(p.dir)}/`));
    // Another VM (a clone) stands on it: it stays, so nothing of this VM is rewritten for nothing.
    if (mine.length === 0 || mine.length < users.length) return;
    const parent = backingOf(layer);
    if (parent === null) throw new Error('it stands on nothing: there is nothing to merge it into');
    // Its parent is a layer (qcow2): only the initial point stands on an image (perhaps raw), and it is never merged.
    if (detectFormat(headOf(parent)) !== 'qcow2') throw new Error(`its parent ${parent} is not a qcow2 layer`);
    const running = this.o.livePid(id) !== undefined;
    const active = isLayered(p) ? realpathSync(p.disk) : undefined;
    for (const f of mine) {
      if (!running) {
        await this.o.exec.run('qemu-img', ['rebase', '-f', 'qcow2', '-F', 'qcow2', '-b', parent, f]);
      } else if (f === active) {
        await this.stream(p, f, parent);
      } else {
        throw new Error(`${f.slice(this.o.stateDir.length + 1)} (a snapshot of the running VM) stands on it: stop the VM to merge it`);
      }
    }
  }

  /** `block-stream` of the running VM's active layer down to `base`, waited for (its error thrown). */
  private async stream(p: VmPaths, top: string, base: string): Promise<void> {
    const client = await QmpClient.connect(p.qmpSock, 5000);
    try {
      const blocks = (await client.execute('query-block')) as { device: string; inserted?: { file?: string } }[];
      const root = blocks.find((b) => b.inserted?.file === top);
      if (!root) throw new Error(`QEMU has no drive on ${top}`);
      const job = `merge-${randomUUID().slice(0, 8)}`;
      // auto-dismiss off: the job stays, concluded, until its outcome (and error) is read.
      await client.execute('block-stream', { 'job-id': job, device: root.device, base, 'auto-dismiss': false });
      for (;;) {
        const jobs = (await client.execute('query-jobs')) as { id: string; status: string; error?: string }[];
        const j = jobs.find((x) => x.id === job);
        if (!j) throw new Error(`block job ${job} vanished`);
        if (j.status === 'concluded') {
          await client.execute('job-dismiss', { id: job });
          if (j.error) throw new Error(`block-stream: ${j.error}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      client.close();
    }
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

function headOf(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(FORMAT_HEAD_BYTES);
    return b.subarray(0, readSync(fd, b, 0, b.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** The file's size once it is on disk (fsync). */
export function syncedSize(file: string): number {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

/** For a path inside a shell command (QEMU's `exec:` migration runs `/bin/sh -c`). */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
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
