/**
 * A QEMU VM's counters (vm-stats.ts) from the host: CPU time and resident memory of its
 * process (`/proc/PID/stat`, `/proc/PID/status`), its disks' bytes (QMP `query-blockstats`, on
 * the VM's own socket), its taps' byte counters (`/sys/class/net/TAP/statistics`). Read only
 * when `/metrics` is scraped.
 */
import { readFile } from 'node:fs/promises';
import { cpuTicks, diskBytes, rssBytes } from '../../core/vm-stats.ts';
import type { Exec } from './exec.ts';
import { QmpClient } from './qmp.ts';
import type { VmSample, VmStats } from './vm-stats.ts';

export interface QemuStatsOptions {
  exec: Exec;
  /** The live QEMU's pid of a VM (the driver's pidfile check), or undefined. */
  pidOf: (id: string) => number | undefined;
  qmpSocket: (id: string) => string;
  /** Roots of procfs and sysfs: parameters so unit tests can give their own files. */
  procRoot?: string;
  sysRoot?: string;
  qmpTimeoutMs?: number;
}

export class QemuVmStats implements VmStats {
  private ticks: Promise<number> | undefined;

  constructor(private readonly opts: QemuStatsOptions) {}

  async sample(id: string, taps: readonly string[]): Promise<VmSample | undefined> {
    const pid = this.opts.pidOf(id);
    if (pid === undefined) return undefined;
    const proc = `${this.opts.procRoot ?? '/proc'}/${pid}`;
    const [stat, status, perSecond, disk, net] = await Promise.all([readFile(`${proc}/stat`, 'utf8'), readFile(`${proc}/status`, 'utf8'), this.clockTicks(), this.blockstats(id), Promise.all(taps.map((t) => this.tap(t)))]);
    return {
      cpuSeconds: cpuTicks(stat) / perSecond,
      rssBytes: rssBytes(status),
      diskReadBytes: disk.read,
      diskWriteBytes: disk.write,
      // The tap's transmit is what the host sent into it: what the guest received.
      netRxBytes: net.reduce((a, n) => a + n.tx, 0),
      netTxBytes: net.reduce((a, n) => a + n.rx, 0),
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

  /** A tap gone meanwhile (the VM stopping) counts nothing rather than failing the scrape. */
  private async tap(name: string): Promise<{ rx: number; tx: number }> {
    const dir = `${this.opts.sysRoot ?? '/sys'}/class/net/${name}/statistics`;
    try {
      const [rx, tx] = await Promise.all([readFile(`${dir}/rx_bytes`, 'utf8'), readFile(`${dir}/tx_bytes`, 'utf8')]);
      return { rx: Number(rx.trim()), tx: Number(tx.trim()) };
    } catch {
      return { rx: 0, tx: 0 };
    }
  }
}
