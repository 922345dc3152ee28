/** Figure (d): resident memory of the control-plane process, from /proc/PID/status. */
import { readFileSync } from 'node:fs';

export interface RssResult {
  rssMiB: number;
  /** Peak RSS over the process's life (VmHWM). */
  peakMiB: number;
}

function kB(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} in /proc status`);
  return Number(m[1]);
}

export function readRss(pid: number): RssResult {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const mb = (k: number) => Math.round((k / 1024) * 10) / 10;
  return { rssMiB: mb(kB(status, 'VmRSS')), peakMiB: mb(kB(status, 'VmHWM')) };
}
