/**
 * The one way the daemons write a state file (credential, agent state, keys, tokens, TLS
 * material): to a temp file beside it, fsync'ed, renamed over it, and the directory fsync'ed.
 * A reader, or the next start after a crash or a full disk, sees the old file or the new one,
 * never half of either. Node built-ins only, so every layer that does I/O may import it.
 */
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Replaces `path` with `content`, with `mode` (0600 for anything secret) set before the
 * content lands. Synchronous on purpose: the agent's state is saved from synchronous code,
 * and each file is small.
 */
export function writeFileAtomic(path: string, content: string | Uint8Array, mode: number): void {
  // Per process: two processes saving the same file never write into each other's temp.
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      fchmodSync(fd, mode); // open's mode is filtered by the umask and ignored for a leftover file
      writeFileSync(fd, content);
      fsyncSync(fd); // the content is on disk before the rename makes it the file
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true }); // a failed write leaves the old file and nothing else
    throw e;
  }
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir); // the rename itself
  } finally {
    closeSync(dir);
  }
}
