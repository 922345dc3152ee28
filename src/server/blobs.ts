/**
 * Content-addressed blob files under `DIR/blobs/sha256/<hex>`. Uploads stream to a temp file
 * while hashing; a digest mismatch deletes the temp file, so nothing is left behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, renameSync, rmSync, statSync, existsSync, openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { ApiError } from '../api/errors.ts';

export class BlobFiles {
  private readonly dir: string;
  private readonly tmp: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'blobs', 'sha256');
    this.tmp = join(dataDir, 'blobs', 'tmp');
    mkdirSync(this.dir, { recursive: true });
    mkdirSync(this.tmp, { recursive: true });
  }

  path(sha256: string): string {
    return join(this.dir, sha256);
  }

  has(sha256: string): boolean {
    return existsSync(this.path(sha256));
  }

  /** Streams `body` in; returns its digest and size. Refuses a mismatch with `expected`. */
  async put(body: Readable, expected?: string): Promise<{ sha256: string; sizeBytes: number }> {
    const tmpFile = join(this.tmp, randomBytes(8).toString('hex'));
    const hash = createHash('sha256');
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    try {
      await pipeline(body, tap, createWriteStream(tmpFile, { flags: 'wx' }));
      const sha256 = hash.digest('hex');
      if (expected && expected !== sha256) throw new ApiError('invalid', `sha256 mismatch: expected ${expected}, got ${sha256}`, 'sha256');
      if (size === 0) throw new ApiError('invalid', 'empty upload', 'body');
      renameSync(tmpFile, this.path(sha256));
      return { sha256, sizeBytes: size };
    } finally {
      rmSync(tmpFile, { force: true });
    }
  }

  read(sha256: string): Readable {
    return createReadStream(this.path(sha256));
  }

  size(sha256: string): number {
    return statSync(this.path(sha256)).size;
  }

  /** First bytes of a blob, to tell qcow2 from raw. */
  head(sha256: string, n: number): Buffer {
    const fd = openSync(this.path(sha256), 'r');
    try {
      const buf = Buffer.alloc(n);
      const got = readSync(fd, buf, 0, n, 0);
      return buf.subarray(0, got);
    } finally {
      closeSync(fd);
    }
  }

  remove(sha256: string): void {
    rmSync(this.path(sha256), { force: true });
  }
}

/** qcow2 files start with "QFI\xfb"; anything else we take as raw. */
export function detectFormat(head: Buffer): 'qcow2' | 'raw' {
  return head.length >= 4 && head.readUInt32BE(0) === 0x514649fb ? 'qcow2' : 'raw';
}
