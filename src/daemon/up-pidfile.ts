/**
 * `DATA/up.pid`: which process is the `butter up` of a data dir, for `butter down` (and so that
 * a second `up` on the same data dir is refused). It holds the pid and the process's start time
 * (field 22 of /proc/PID/stat), so a pid reused by another process after a crash is not taken
 * for it: a stale file (`up` was killed) names a process that is gone or started at another time.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.ts';

export function upPidFile(dataDir: string): string {
  return join(dataDir, 'up.pid');
}

/** The start time of a live (not zombie) process, in clock ticks since boot; undefined when none. */
export function startTimeOf(pid: number, procDir = '/proc'): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(join(procDir, String(pid), 'stat'), 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  return rest[19];
}

/** The live `butter up` of this data dir, if any. */
export function liveUp(dataDir: string, procDir = '/proc'): { pid: number; startTime: string } | undefined {
  let text: string;
  try {
    text = readFileSync(upPidFile(dataDir), 'utf8');
  } catch {
    return undefined;
  }
  const [pidText, startTime] = text.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || !startTime) return undefined;
  return startTimeOf(pid, procDir) === startTime ? { pid, startTime } : undefined;
}

/** Claims the data dir for this process; throws when a live `butter up` holds it. */
export function claimUp(dataDir: string): void {
  const other = liveUp(dataDir);
  if (other && other.pid !== process.pid) throw new Error(`butter up is already running on ${dataDir} (pid ${other.pid}); stop it first (butter down stops it)`);
  writeFileAtomic(upPidFile(dataDir), `${process.pid} ${startTimeOf(process.pid)}\n`, 0o600);
}

/** At a clean stop: only our own claim is removed. */
export function releaseUp(dataDir: string): void {
  if (liveUp(dataDir)?.pid === process.pid) rmSync(upPidFile(dataDir), { force: true });
}
