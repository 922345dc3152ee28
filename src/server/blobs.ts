/**
 * Content-addressed blob files under `DIR/blobs/sha256/<hex>`. Uploads stream to a temp file
 * while hashing; a digest mismatch, or a qcow2 that names another file, deletes the temp file,
 * so nothing is left behind. Owner-only (0700 dirs, 0600 files): blobs are users' disks.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, createReadStream, createWriteStream, mkdirSync, renameSync, rmSync, statSync, existsSync, openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { ApiError } from '../api/errors.ts';
import { detectFormat, FORMAT_HEAD_BYTES, type DiskFormat } from '../core/image-check.ts';
import type { ImageInspector } from './image-inspector.ts';

export class BlobFiles {
  private readonly dir: string;
  private readonly tmp: string;

  constructor(
    dataDir: string,
    private readonly inspector: ImageInspector,
  ) {
    this.dir = join(dataDir, 'blobs', 'sha256');
    this.tmp = join(dataDir, 'blobs', 'tmp');
    // mkdir's mode is filtered by the umask and leaves an existing dir as it was: chmod too.
    for (const d of [this.dir, this.tmp]) mkdirSync(d, { recursive: true, mode: 0o700 });
    for (const d of [join(dataDir, 'blobs'), this.dir, this.tmp]) chmodSync(d, 0o700);
  }

  path(sha256: string): string {
    return join(this.dir, sha256);
  }

  has(sha256: string): boolean {
    return existsSync(this.path(sha256));
  }

  /**
   * Streams `body` in; returns its digest and size. Refuses a mismatch with `expected`, and a
   * qcow2 (by its magic) that is not self-contained: a blob has no kind yet, but a qcow2 is
   * only ever a disk, and refusing it here keeps nothing of it. Raw blobs are checked when an
   * image names them (images.ts).
   */
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
      await pipeline(body, tap, createWriteStream(tmpFile, { flags: 'wx', mode: 0o600 }));
      const sha256 = hash.digest('hex');
      if (expected && expected !== sha256) throw new ApiError('invalid', `sha256 mismatch: expected ${expected}, got ${sha256}`, 'sha256');
      if (size === 0) throw new ApiError('invalid', 'empty upload', 'body');
      if (detectFormat(headOf(tmpFile, FORMAT_HEAD_BYTES)) === 'qcow2') await this.inspector.check(tmpFile, 'qcow2', 'body');
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

  /** The blob's disk format (qcow2 by its magic, else raw), which it is opened as everywhere. */
  format(sha256: string): DiskFormat {
    return detectFormat(headOf(this.path(sha256), FORMAT_HEAD_BYTES));
  }

  /** Throws `invalid` naming `field` unless the blob is a self-contained disk in its format. */
  async check(sha256: string, field: string): Promise<DiskFormat> {
    const format = this.format(sha256);
    await this.inspector.check(this.path(sha256), format, field);
    return format;
  }

  remove(sha256: string): void {
    rmSync(this.path(sha256), { force: true });
  }
}

/** First bytes of a file, to tell qcow2 from raw. */
function headOf(file: string, n: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const got = readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
