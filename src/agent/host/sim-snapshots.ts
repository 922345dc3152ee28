/**
 * The simulated driver's disk snapshots (issue 16): the same interface as QEMU's, on files
 * only. `vms/<id>/snapshots/<snapshot>.json` names what the snapshot stands on, and
 * `vms/<id>/disk.json` what the VM's (imaginary) disk stands on, so the chain rules (a
 * snapshot something stands on is not deleted) are exercised without a guest. Async I/O only:
 * a `butter sim` process runs 1,000 agents.
 */
import { promises as fsp } from 'node:fs';
import type { SnapshotDisks } from './driver.ts';

const ID = /^[a-z0-9]{1,32}$/;
const VM_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

interface Layer {
  /** `vm/snapshot` it stands on, or null (the image). */
  backing: string | null;
}

export class SimSnapshots implements SnapshotDisks {
  /** VMs whose disk exists (made by a start); kept by the sim driver's table. */
  constructor(
    private readonly stateDir: string,
    private readonly made: (id: string) => boolean,
    private readonly running: (id: string) => boolean = () => false,
  ) {}

  hasDisk(id: string): boolean {
    return this.made(id);
  }

  private dir(id: string): string {
    if (!VM_ID.test(id)) throw new Error(`invalid VM id: ${JSON.stringify(id)}`);
    return `${this.stateDir}/vms/${id}`;
  }

  private file(id: string, snapshot: string): string {
    if (!ID.test(snapshot)) throw new Error(`invalid snapshot id: ${JSON.stringify(snapshot)}`);
    return `${this.dir(id)}/snapshots/${snapshot}.json`;
  }

  /** At the VM's first start: the initial point, on the image or a clone's snapshot. */
  async create(id: string, initial: string | undefined, base: { vm: string; snapshot: string } | undefined, baseFile?: { file: string; sha256: string }): Promise<void> {
    if (base) {
      try {
        await fsp.access(this.file(base.vm, base.snapshot));
      } catch {
        throw new Error(`snapshot ${base.snapshot} of vm ${base.vm} is not on this host`);
      }
    }
    if (baseFile) await fsp.access(baseFile.file);
    let below: string | null = base ? `${base.vm}/${base.snapshot}` : baseFile ? `blob:${baseFile.sha256}` : null;
    if (initial !== undefined) {
      await this.write(this.file(id, initial), { backing: below });
      below = `${id}/${initial}`;
    }
    await this.write(`${this.dir(id)}/disk.json`, { backing: below });
  }

  async restore(id: string, snapshot: string): Promise<void> {
    try {
      await fsp.access(this.file(id, snapshot));
    } catch {
      throw new Error(`snapshot ${snapshot} is not on this host`);
    }
    await this.write(`${this.dir(id)}/disk.json`, { backing: `${id}/${snapshot}` });
  }

  async list(id: string): Promise<string[]> {
    try {
      return (await fsp.readdir(`${this.dir(id)}/snapshots`)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).filter((s) => ID.test(s)).sort();
    } catch {
      return [];
    }
  }

  /** `memory`: a small file stands for the RAM saved with it (`snapshots/<id>.memory`), made before the snapshot's own. */
  async take(id: string, snapshot: string, opts: { memory?: boolean } = {}): Promise<{ pauseMs?: number; sizeBytes?: number; memoryBytes?: number }> {
    const disk = await this.read(`${this.dir(id)}/disk.json`);
    if (!disk) throw new Error('the VM has no disk yet');
    let memoryBytes: number | undefined;
    if (opts.memory) {
      if (!this.running(id)) throw new Error('the VM is not running: a memory snapshot is of a running guest');
      const body = `[sim] memory state of ${id} with snapshot ${snapshot}, saved ${new Date().toISOString()}\n`;
      await fsp.mkdir(`${this.dir(id)}/snapshots`, { recursive: true, mode: 0o700 });
      await fsp.writeFile(this.memoryFile(id, snapshot), body, { mode: 0o600 });
      memoryBytes = Buffer.byteLength(body);
    }
    await this.write(this.file(id, snapshot), disk);
    await this.write(`${this.dir(id)}/disk.json`, { backing: `${id}/${snapshot}` });
    return { sizeBytes: 0, ...(memoryBytes !== undefined ? { pauseMs: 0, memoryBytes } : {}) };
  }

  /** The file that stands for the RAM saved with a memory snapshot. */
  memoryFile(id: string, snapshot: string): string {
    return this.file(id, snapshot).replace(/\.json$/, '.memory');
  }

  async remove(id: string, snapshot: string, merge = false): Promise<void> {
    const me = `${id}/${snapshot}`;
    if (merge) {
      // This VM's own disk and snapshots on it now stand on its parent (QEMU's: rebase or block-stream).
      const parent = (await this.read(this.file(id, snapshot)))?.backing ?? null;
      for (const f of [`${this.dir(id)}/disk.json`, ...(await this.list(id)).map((s) => this.file(id, s))]) {
        if ((await this.read(f))?.backing === me) await this.write(f, { backing: parent });
      }
    }
    const users: string[] = [];
    let vms: string[] = [];
    try {
      vms = await fsp.readdir(`${this.stateDir}/vms`);
    } catch {
      // None.
    }
    for (const vm of vms) {
      if (!VM_ID.test(vm)) continue;
      const files = [`${this.dir(vm)}/disk.json`, ...(await this.list(vm)).map((s) => this.file(vm, s))];
      for (const f of files) if ((await this.read(f))?.backing === me) users.push(f.slice(this.stateDir.length + 5));
    }
    if (users.length) throw new Error(`${users.join(', ')} stand${users.length > 1 ? '' : 's'} on it`);
    await fsp.rm(this.file(id, snapshot), { force: true });
    await fsp.rm(this.memoryFile(id, snapshot), { force: true });
  }

  /** A small file that says which chain it flattens: what a test can check arrived where. */
  async export(id: string, snapshot: string, dest: string): Promise<void> {
    const chain: string[] = [];
    let at: string | null = `${id}/${snapshot}`;
    while (at !== null && !at.startsWith('blob:') && chain.length < 1000) {
      const [vm, snap] = at.split('/') as [string, string];
      const layer = await this.read(this.file(vm, snap));
      if (!layer) throw new Error(`snapshot ${snap} of vm ${vm} is not on this host`);
      chain.push(at);
      at = layer.backing;
    }
    if (at !== null) chain.push(at);
    await fsp.writeFile(dest, `butter sim disk\n${JSON.stringify({ chain })}\n`, { mode: 0o600, flag: 'wx' });
  }

  private async read(file: string): Promise<Layer | undefined> {
    try {
      return JSON.parse(await fsp.readFile(file, 'utf8')) as Layer;
    } catch {
      return undefined;
    }
  }

  private async write(file: string, layer: Layer): Promise<void> {
    await fsp.mkdir(file.slice(0, file.lastIndexOf('/')), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify(layer), { mode: 0o600 });
    await fsp.rename(tmp, file);
  }
}
