/**
 * Records the synchronous file writes (open for writing, write, append, fsync, rename, mkdir,
 * rm) this process makes under one directory, by wrapping `node:fs`'s functions and
 * re-syncing the ESM bindings (`syncBuiltinESMExports`), so code that imported them by name
 * is observed unchanged. Each call blocks the event loop for as long as the disk takes: an
 * fsync is milliseconds on a busy disk, and 1,000 agents in one process pay it for all.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { resolve } from 'node:path';

type Fn = (...args: unknown[]) => unknown;
/** Called with a path or an open descriptor. */
const WRITES = ['writeFileSync', 'appendFileSync', 'renameSync', 'mkdirSync', 'rmSync', 'copyFileSync', 'fsyncSync', 'fdatasyncSync', 'writeSync', 'fchmodSync'] as const;

export interface SyncWriteSpy {
  /** `fsSyncName path`, one per call, in order. */
  readonly calls: string[];
  restore(): void;
}

export function spySyncWrites(dir: string, ignore: (path: string) => boolean = () => false): SyncWriteSpy {
  const root = resolve(dir);
  const calls: string[] = [];
  const fds = new Map<number, string>();
  const mod = fs as unknown as Record<string, Fn>;
  const saved = new Map<string, Fn>();
  const watched = (p: unknown): string | undefined => {
    if (typeof p !== 'string') return undefined;
    const abs = resolve(p);
    return (abs === root || abs.startsWith(`${root}/`)) && !ignore(abs) ? abs : undefined;
  };
  const wrap = (name: string, f: (real: Fn) => Fn) => {
    saved.set(name, mod[name]!);
    mod[name] = f(mod[name]!);
  };
  wrap('openSync', (real) => (...args) => {
    const fd = real(...args) as number;
    const p = watched(args[0]);
    if (p) {
      fds.set(fd, p);
      const flags = args[1] ?? 'r';
      if (flags !== 'r' && flags !== fs.constants.O_RDONLY) calls.push(`openSync ${p}`);
    }
    return fd;
  });
  wrap('closeSync', (real) => (...args) => (fds.delete(args[0] as number), real(...args)));
  for (const name of WRITES) wrap(name, (real) => (...args) => {
    const p = typeof args[0] === 'number' ? fds.get(args[0]) : watched(args[0]);
    if (p) calls.push(`${name} ${p}`);
    return real(...args);
  });
  syncBuiltinESMExports();
  return {
    calls,
    restore() {
      for (const [name, f] of saved) mod[name] = f;
      syncBuiltinESMExports();
    },
  };
}
