/**
 * Parsing what the kernel and QEMU say of a VM's process (pure; agent/host/qemu-stats.ts reads
 * the files and asks QMP): CPU time from `/proc/PID/stat`, resident memory from
 * `/proc/PID/status`, disk bytes from QMP `query-blockstats`.
 */

/**
 * utime + stime of `/proc/PID/stat`, in clock ticks (fields 14 and 15). The command name
 * (field 2) is in parentheses and may hold spaces and parentheses itself, so the fields are
 * counted from the LAST `)`.
 */
export function cpuTicks(stat: string): number {
  const end = stat.lastIndexOf(')');
  if (end < 0) throw new Error('not a /proc/PID/stat line');
  // After ") ": field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
  const f = stat.slice(end + 2).trim().split(/\s+/);
  const utime = Number(f[11]), stime = Number(f[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('no utime/stime in /proc/PID/stat');
  return utime + stime;
}

/** `VmRSS` of `/proc/PID/status`, in bytes (the kernel writes kB, meaning KiB). */
export function rssBytes(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error('no VmRSS in /proc/PID/status');
  return Number(m[1]) * 1024;
}

interface BlockStats {
  device?: string;
  stats?: { rd_bytes?: number; wr_bytes?: number };
}

/**
 * Bytes read and written by the guest over all its disks: the top-level entries of
 * `query-blockstats`, one per drive the guest sees (their `parent`/`backing` entries are the
 * same I/O again, at the layers below, and are not summed).
 */
export function diskBytes(blockstats: unknown): { read: number; write: number } {
  if (!Array.isArray(blockstats)) throw new Error('query-blockstats did not answer a list');
  let read = 0, write = 0;
  for (const b of blockstats as BlockStats[]) {
    read += b.stats?.rd_bytes ?? 0;
    write += b.stats?.wr_bytes ?? 0;
  }
  return { read, write };
}

/**
 * Byte counters per interface from `/proc/net/dev` (`IFACE: rx_bytes … (8 receive fields)
 * tx_bytes …`). The same counters as `/sys/class/net/IFACE/statistics`, but of the READER's
 * network namespace: sysfs shows the namespace of whoever mounted it, so an agent run with
 * `nsenter --net` (as the host tests run `butter up`) would find no taps there.
 */
export function netDevBytes(text: string): Map<string, { rx: number; tx: number }> {
  const out = new Map<string, { rx: number; tx: number }>();
  for (const line of text.split('\n')) {
    const m = /^\s*([^\s:]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    if (f.length < 16 || f.some((n) => !Number.isFinite(n))) continue;
    out.set(m[1]!, { rx: f[0]!, tx: f[8]! });
  }
  return out;
}
