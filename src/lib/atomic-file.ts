/**
 * The one way the daemons write a state file (credential, agent state, keys, tokens, TLS
 * material): to a temp file beside it, fsync'ed, renamed over it, and the directory fsync'ed.
 * A reader, or the next start after a crash or a full disk, sees the old file or the new one,
 * never half of either. Node built-ins only, so every layer that does I/O may import it.
 *
 * Two forms: `writeFileAtomic` (synchronous, for files written once or rarely, at start-up or
 * from a command: credential.json, keys, tokens) and `writeFileAtomicAsync` (for state saved
 * while a daemon serves: an fsync takes as long as the disk does, milliseconds on a busy one,
 * and done synchronously it stops the whole event loop meanwhile; `butter sim` runs 1,000
 * agents in one). Files saved often go through `CoalescedWriter` (coalesced-writer.ts), which
 * also keeps two writes of one file from overlapping.
 */
import { closeSync, fchmodSync, fsyncSync, openSync, promises as fsp, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Per process: two processes saving the same file never write into each other's temp. */
export function tempPathOf(path: string): string {
  return `${path}.tmp-${process.pid}`;
}

/**
 * Replaces `path` with `content`, with `mode` (0600 for anything secret) set before the
 * content lands. Synchronous: for a file written once or rarely, outside any hot path.
 */
export function writeFileAtomic(path: string, content: string | Uint8Array, mode: number, opts: { fsync?: boolean } = {}): void {
  const sync = opts.fsync ?? true;
  const tmp = tempPathOf(path);
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      fchmodSync(fd, mode); // open's mode is filtered by the umask and ignored for a leftover file
      writeFileSync(fd, content);
      if (sync) fsyncSync(fd); // the content is on disk before the rename makes it the file
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true }); // a failed write leaves the old file and nothing else
    throw e;
  }
  if (!sync) return; // still whole or absent after a crash of the process, not of the host
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir); // the rename itself
  } finally {
    closeSync(dir);
  }
}

/** The part of `fs.promises` an asynchronous atomic write uses; tests pass a slow or failing one. */
export interface AtomicWriteFs {
  open(path: string, flags: string, mode?: number): Promise<AtomicWriteHandle>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, opts: { force: boolean }): Promise<void>;
}
export interface AtomicWriteHandle {
  chmod(mode: number): Promise<void>;
  writeFile(data: string | Uint8Array): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface AtomicWriteOptions {
  /**
   * False: no fsync of the file nor of the directory. The rename still makes the change
   * whole for readers and for a crash of the process; only a crash of the host (power loss)
   * may lose it. For files whose durability is nobody's (the simulated driver's table).
   */
  fsync?: boolean;
  fs?: AtomicWriteFs;
}

/**
 * `writeFileAtomic` on `fs.promises`: the same steps in the same order, none of them blocking
 * the event loop. Not safe to run twice at once on one path in one process (the temp file is
 * shared): `CoalescedWriter` makes sure of that.
 */
export async function writeFileAtomicAsync(path: string, content: string | Uint8Array, mode: number, opts: AtomicWriteOptions = {}): Promise<void> {
  const fs = opts.fs ?? fsp;
  const durable = opts.fsync !== false;
  const tmp = tempPathOf(path);
  try {
    const fh = await fs.open(tmp, 'w', mode);
    try {
      await fh.chmod(mode);
      await fh.writeFile(content);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  if (!durable) return;
  const dir = await fs.open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
