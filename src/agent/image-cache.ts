/**
 * The agent's copy of image blobs, fetched from the control plane and verified by sha256
 * before use: `<stateDir>/images/<sha256>`. Content addressing makes the cache trivially
 * shareable between VMs and safe to resume after a crash (a partial file is never renamed in).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client } from '../sdk/client.ts';

export class ImageCache {
  private readonly dir: string;
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    stateDir: string,
    private readonly client: Client,
  ) {
    this.dir = join(stateDir, 'images');
    mkdirSync(this.dir, { recursive: true });
  }

  path(sha256: string): string {
    return join(this.dir, sha256);
  }

  /** Path of the verified blob, downloading it once even when several VMs ask at once. */
  ensure(sha256: string): Promise<string> {
    const file = this.path(sha256);
    if (existsSync(file)) return Promise.resolve(file);
    let p = this.inflight.get(sha256);
    if (!p) {
      p = this.download(sha256).finally(() => this.inflight.delete(sha256));
      this.inflight.set(sha256, p);
    }
    return p;
  }

  private async download(sha256: string): Promise<string> {
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
      await pipeline(body, tap, createWriteStream(tmp));
      const got = hash.digest('hex');
      if (got !== sha256) throw new Error(`image blob ${sha256} arrived with digest ${got}`);
      renameSync(tmp, this.path(sha256));
      return this.path(sha256);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /** Drops blobs no VM needs any more. */
  prune(keep: ReadonlySet<string>, all: readonly string[]): void {
    for (const sha of all) if (!keep.has(sha)) rmSync(this.path(sha), { force: true });
  }
}
