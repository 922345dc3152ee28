/**
 * The agent's copy of image blobs, fetched from the control plane and verified by sha256
 * before use: `<stateDir>/images/<sha256>`. Content addressing makes the cache trivially
 * shareable between VMs and safe to resume after a crash (a partial file is never renamed in).
 *
 * A disk blob is also inspected before QEMU gets it (`qemu-img info` in its forced format,
 * core/image-check.ts): one naming a backing or data file would hand a host file to the guest.
 * The control plane checks uploads too; this is the wall that does not trust its store.
 * Owner-only: 0700 dir, 0600 files.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statfsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readdir, stat } from 'node:fs/promises';
import { couldNotInspect, imageInfoCommand, judgeImageInfo, type DiskFormat } from '../core/image-check.ts';
import { diskIsLow, planEviction } from '../core/image-eviction.ts';
import type { Client } from '../sdk/client.ts';
import type { Exec } from './host/exec.ts';

export class ImageCache {
  private readonly dir: string;
  private readonly inflight = new Map<string, Promise<string>>();
  /** `sha:format` pairs inspected by this process (a file already cached by an older agent is inspected once too). */
  private readonly inspected = new Set<string>();

  /** `exec` undefined: no hypervisor opens these blobs (the simulated driver), so none is inspected. */
  constructor(
    stateDir: string,
    private readonly client: Client,
    private readonly exec: Exec | undefined,
  ) {
    this.dir = join(stateDir, 'images');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
  }

  /** The images held (complete blobs, not downloads under way) and their bytes: for `/metrics`. */
  async cached(): Promise<{ count: number; bytes: number }> {
    const names = (await readdir(this.dir)).filter((f) => /^[0-9a-f]{64}$/.test(f));
    const sizes = await Promise.all(names.map((f) => stat(join(this.dir, f)).then((s) => s.size, () => 0)));
    return { count: names.length, bytes: sizes.reduce((a, b) => a + b, 0) };
  }

  path(sha256: string): string {
    return join(this.dir, sha256);
  }

  /**
   * Path of the verified blob, downloading it once even when several VMs ask at once. With a
   * `format` (a disk), only once it is found self-contained in that format; a cached blob
   * that is not is removed.
   */
  ensure(sha256: string, format?: DiskFormat): Promise<string> {
    const file = this.path(sha256);
    const key = `${sha256}:${format ?? ''}`;
    if (existsSync(file) && (format === undefined || this.exec === undefined || this.inspected.has(key))) return Promise.resolve(file);
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetch(sha256, format).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async fetch(sha256: string, format: DiskFormat | undefined): Promise<string> {
    const file = this.path(sha256);
    if (existsSync(file)) {
      try {
        await this.inspect(file, sha256, format);
      } catch (e) {
        // Only a refusal drops it: a blob that could not be inspected may be a running VM's base.
        if (e instanceof ImageRefused) rmSync(file, { force: true });
        throw e;
      }
      return file;
    }
    const tmp = join(this.dir, `.${sha256}.${randomBytes(4).toString('hex')}`);
    try {
      const { body } = await this.client.downloadBlob(sha256);
      const hash = createHash('sha256');
      const tap = new Transform({
        transform(chunk: Buffer, _e, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      await pipeline(Readable.fromWeb(body as never), tap, createWriteStream(tmp, { mode: 0o600 }));
      const got = hash.digest('hex');
      if (got !== sha256) throw new Error(`image blob ${sha256} arrived with digest ${got}`);
      // Inspected before it is renamed in: a refused blob never sits where QEMU would look.
      await this.inspect(tmp, sha256, format);
      renameSync(tmp, file);
      return file;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  private async inspect(file: string, sha256: string, format: DiskFormat | undefined): Promise<void> {
    if (format === undefined || this.exec === undefined) return;
    const c = imageInfoCommand(resolve(file), format);
    const r = await this.exec.run(c.cmd, c.args, { allowFail: true, timeoutMs: 60_000 });
    if (couldNotInspect(r)) throw new Error(`cannot inspect image blob ${sha256.slice(0, 12)}: ${r.stderr.trim() || `${c.cmd} exited ${r.code}`} (qemu-img and prlimit are needed on every node)`);
    const v = judgeImageInfo(r, format);
    if (!v.ok) throw new ImageRefused(`image blob ${sha256.slice(0, 12)} refused: ${v.reason}`);
    this.inspected.add(`${sha256}:${format}`);
  }

  /** When each unused blob was first seen unused (core/image-eviction.ts); a restart starts the clocks over. */
  private unusedSince = new Map<string, number>();

  /**
   * Deletes cached blobs that no VM in `inUse` needs: after `graceMs` unused, or at once when
   * the cache's filesystem has less than `minFreePercent` free. The caller vouches that `inUse`
   * covers every VM on the node, running or stopped (agent.ts skips a pass when it cannot).
   * A blob being downloaded is never touched (its temp file has another name; an inflight
   * fetch counts as in use). Returns what was deleted.
   */
  evictUnused(inUse: ReadonlySet<string>, o: { graceMs: number; minFreePercent: number; now?: number; statfs?: (dir: string) => { bavail: number; blocks: number } }): string[] {
    const cached = readdirSync(this.dir).filter((f) => /^[0-9a-f]{64}$/.test(f));
    const busy = new Set([...inUse, ...[...this.inflight.keys()].map((k) => k.split(':')[0]!)]);
    const fs = (o.statfs ?? statfsSync)(this.dir);
    const plan = planEviction({ cached, inUse: busy, unusedSince: this.unusedSince, now: o.now ?? Date.now(), graceMs: o.graceMs, diskLow: diskIsLow(fs, o.minFreePercent) });
    this.unusedSince = plan.unusedSince;
    for (const sha of plan.evict) {
      rmSync(this.path(sha), { force: true });
      for (const k of this.inspected) if (k.startsWith(`${sha}:`)) this.inspected.delete(k);
    }
    return plan.evict;
  }
}

/** The inspection's verdict: the blob names another file or is not what it claims. */
class ImageRefused extends Error {
  override name = 'ImageRefused';
}
