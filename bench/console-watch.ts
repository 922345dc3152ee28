/**
 * Timestamps a guest's console lines as they appear in its log file (polled every 10 ms), so
 * a boot can be split into phases on the host clock: QEMU spawned → the guest's /init starts
 * (firmware + kernel) → it has an address (modules, DHCP) → it fetched its metadata.
 */
import { existsSync, readFileSync } from 'node:fs';

export interface ConsoleMarks {
  /** Epoch ms when each marker line was first seen. */
  initAt?: number;
  ipAt?: number;
  metadataAt?: number;
}

const MARKERS: [keyof ConsoleMarks, RegExp][] = [
  ['initAt', /butter-tiny: init starting/],
  ['ipAt', /butter-tiny: ip=/],
  ['metadataAt', /butter-tiny: metadata fetched/],
];

/** Starts watching; `file()` may return undefined until the log exists. Call the result to stop. */
export function watchConsole(file: () => string | undefined): () => ConsoleMarks {
  const marks: ConsoleMarks = {};
  let path: string | undefined;
  const timer = setInterval(() => {
    path ??= file();
    if (!path || !existsSync(path)) return;
    const text = readFileSync(path, 'utf8');
    const now = Date.now();
    for (const [k, re] of MARKERS) if (marks[k] === undefined && re.test(text)) marks[k] = now;
  }, 10);
  return () => {
    clearInterval(timer);
    return marks;
  };
}

export interface BootPhases {
  /** QEMU spawned → the guest's /init printed its first line (QEMU, firmware, kernel). */
  toInitMs: number | null;
  /** /init → it has an address (modules, acpid, DHCP). */
  initToIpMs: number | null;
  /** Address → it printed that it fetched its metadata (disk mount, the fetch itself). */
  ipToMetadataMs: number | null;
}

export function phases(spawnAt: number | null, m: ConsoleMarks): BootPhases {
  const d = (a: number | undefined | null, b: number | undefined | null) => (a == null || b == null ? null : b - a);
  return { toInitMs: d(spawnAt, m.initAt), initToIpMs: d(m.initAt, m.ipAt), ipToMetadataMs: d(m.ipAt, m.metadataAt) };
}
