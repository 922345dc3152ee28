/**
 * A QEMU VM's counters (vm-stats.ts) from the host: CPU time and resident memory of its
 * process (`/proc/PID/stat`, `/proc/PID/status`), its disks' bytes (QMP `query-blockstats`, on
 * the VM's own socket), its taps' byte counters (`/proc/net/dev`: the counters of
 * `/sys/class/net/TAP/statistics`, in the agent's own network namespace, see core/vm-stats.ts).
 * Read only when `/metrics` is scraped.
 */
import { readFile } from 'node:fs/promises';
import { cpuTicks, diskBytes, netDevBytes, rssBytes } from '../../core/vm-stats.ts';
import type { Exec } from './exec.ts';
import { QmpClient } from './qmp.ts';
import type { VmSample, VmStats } from './vm-stats.ts';

export interface QemuStatsOptions {
  exec: Exec;
  /** The live QEMU's pid of a VM (the driver's pidfile check), or undefined. */
  pidOf: (id: string) => number | undefined;
  qmpSocket: (id: string) => string;
  /** The root of procfs: a parameter so unit tests can give their own files. */
  procRoot?: string;
  qmpTimeoutMs?: number;
}

export class QemuVmStats implements VmStats {
  private ticks: Promise<number> | undefined;

  constructor(private readonly opts: QemuStatsOptions) {}

  async sample(id: string, taps: readonly string[]): Promise<VmSample | undefined> {
    const pid = this.opts.pidOf(id);
    if (pid === undefined) return undefined;
    const proc = `${this.opts.procRoot ?? '/proc'}/${pid}`;
    const [stat, status, perSecond, disk, dev] = await Promise.all([readFile(`${proc}/stat`, 'utf8'), readFile(`${proc}/status`, 'utf8'), this.clockTicks(), this.blockstats(id), readFile(`${this.opts.procRoot ?? '/proc'}/net/dev`, 'utf8')]);
    // A tap gone meanwhile (the VM stopping) counts nothing rather than failing the scrape.
    const net = netDevBytes(dev);
    const counts = taps.map((t) => net.get(t) ?? { rx: 0, tx: 0 });
    return {
      cpuSeconds: cpuTicks(stat) / perSecond,
      rssBytes: rssBytes(status),
      diskReadBytes: disk.read,
      diskWriteBytes: disk.write,
      // The tap's transmit is what the host sent into it: what the guest received.
      netRxBytes: counts.reduce((a, n) => a + n.tx, 0),
      netTxBytes: counts.reduce((a, n) => a + n.rx, 0),
    };
  }

  /** The kernel's clock ticks per second (USER_HZ, almost always 100), asked once. */
  private clockTicks(): Promise<number> {
    return (this.ticks ??= this.opts.exec.run('getconf', ['CLK_TCK'], { allowFail: true }).then((r) => {
      const n = Number.parseInt(r.stdout.trim(), 10);
      return r.code === 0 && n > 0 ? n : 100;
    }));
  }

  private async blockstats(id: string): Promise<{ read: number; write: number }> {
    const client = await QmpClient.connect(this.opts.qmpSocket(id), this.opts.qmpTimeoutMs ?? 2000);
    try {
      const timeout = this.opts.qmpTimeoutMs ?? 2000;
      let timer: NodeJS.Timeout | undefined;
      const answer = await Promise.race([
        client.execute('query-blockstats'),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`QMP query-blockstats: no answer within ${timeout} ms`)), timeout))),
      ]).finally(() => clearTimeout(timer));
      return diskBytes(answer);
    } finally {
      client.close();
    }
  }
}
