/**
 * Rotation of a daemon's own log when it goes to a file rather than the journal: the
 * quickstart runs `nohup butter up >>/var/log/butter.log 2>&1`, so stderr is a file nothing
 * else rotates. Under systemd stderr is the journal's socket (bounded by journald): nothing
 * to do, and the same goes for a terminal or a pipe.
 *
 * The file is the shell's, opened before we run, so we cannot reopen it (pino-roll would need
 * the daemon to own the file, a `--log-file` flag and a worker thread per process). Instead,
 * copy-then-truncate on our own descriptor: past `maxBytes`, `LOG.1`… shift to `LOG.2`…, the
 * file is copied to `LOG.1` and truncated to 0. It is opened O_APPEND (`>>`), so every writer
 * holding it (ours, children that inherited it) goes on at the new end. Our log writes are
 * synchronous (logger.ts), so none lands between the copy and the truncate; a child's line
 * could, and would be lost (the daemons' children write their output to pipes, not here).
 * Without O_APPEND (`>` instead of `>>`) truncating would leave writes at the old offset, a
 * sparse file as big as before: then we warn once and leave the file alone.
 */
import { copyFileSync, existsSync, fstatSync, ftruncateSync, readFileSync, readlinkSync, renameSync } from 'node:fs';

const O_APPEND = 0o2000;
const CHECK_MS = 60_000;

export interface LogRotation {
  maxBytes: number;
  /** Rotated files kept: `LOG.1` (newest) … `LOG.keep`. */
  keep: number;
}

/** Where descriptor `fd` writes, when that is a regular file opened for appending; else why not. */
export function appendedFile(fd: number, proc = '/proc/self'): { path: string } | { skip: string } {
  const st = fstatSync(fd);
  if (!st.isFile()) return { skip: 'not a file' }; // the journal, a terminal, a pipe
  const path = readlinkSync(`${proc}/fd/${fd}`);
  if (path.endsWith(' (deleted)')) return { skip: 'the log file was deleted' };
  const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`${proc}/fdinfo/${fd}`, 'utf8'));
  if (!flags || (parseInt(flags[1]!, 8) & O_APPEND) === 0) return { skip: `${path} is not opened for appending (use >> rather than >): not rotated` };
  return { path };
}

/** Rotates `path` (written through `fd`) when it is bigger than `maxBytes`; true when it did. */
export function rotateIfBig(fd: number, path: string, o: LogRotation): boolean {
  if (fstatSync(fd).size <= o.maxBytes) return false;
  for (let i = o.keep - 1; i >= 1; i--) if (existsSync(`${path}.${i}`)) renameSync(`${path}.${i}`, `${path}.${i + 1}`);
  copyFileSync(path, `${path}.1`);
  ftruncateSync(fd, 0);
  return true;
}

/** Checks stderr at start and every minute; returns the stop function. `warn` hears why it will not rotate, once. */
export function rotateStderr(o: LogRotation, warn: (msg: string) => void, fd = 2): () => void {
  let target: { path: string } | { skip: string };
  try {
    target = appendedFile(fd);
  } catch (e) {
    target = { skip: String(e) };
  }
  if ('skip' in target) {
    if (target.skip !== 'not a file') warn(`log not rotated: ${target.skip}`);
    return () => {};
  }
  const { path } = target;
  const check = () => {
    try {
      rotateIfBig(fd, path, o);
    } catch (e) {
      warn(`log rotation of ${path} failed: ${String(e)}`);
    }
  };
  check();
  const timer = setInterval(check, CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
