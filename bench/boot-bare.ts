/**
 * Figure (a), baseline: bare `qemu-system-x86_64` booting the same tiny image (same kernel,
 * initrd, command line, a qcow2 overlay of the same root.img, same CPUs and memory, the same
 * machine options Butter's driver uses) from process spawn until a local HTTP server answers
 * the guest's first `/meta-data`.
 *
 * Networking is QEMU user mode (slirp) with `restrict=on`, so nothing leaves QEMU, and a
 * guestfwd of 169.254.169.254:80 to our server on 127.0.0.1. Two slirp quirks (see
 * test/host/tiny-image.test.ts): guestfwd only takes an address inside the slirp network
 * (hence `net=169.254.169.0/24`), and a `tcp:` guestfwd target is ONE connection that QEMU
 * opens at start-up and reuses for every guest connection, so the server must keep it open
 * even though busybox wget sends `Connection: close`.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseSize } from '../src/core/units.ts';
import { registerCleanup } from './cleanup.ts';
import { phases, watchConsole, type BootPhases } from './console-watch.ts';
import type { VmShape } from './boot-butter.ts';
import { sleep, within } from './stats.ts';

const execFileP = promisify(execFile);

export interface TinyFiles {
  kernel: string;
  initrd: string;
  rootImg: string;
  cmdline: string;
}

export interface BareBoot {
  /** qemu-system spawned → first GET /meta-data received: the figure. */
  totalMs: number;
  /** CPU seconds QEMU used per wall second until then: below ~1 it was starved by other work. */
  cpuShare: number | null;
  /** The boot from spawn, split by the guest's console lines (host clock). */
  phases: BootPhases;
  guestBootS: number | null;
}

/** One fake metadata service per boot; records when the first /meta-data arrived. */
class MetadataServer {
  private readonly server: http.Server;
  port = 0;
  firstMetaData: Promise<number>;
  private resolveFirst!: (t: number) => void;

  constructor(hostname: string) {
    this.firstMetaData = new Promise((r) => (this.resolveFirst = r));
    // insecureHTTPParser: llhttp otherwise rejects a second request on a connection whose
    // first request said `Connection: close` -- and the guestfwd stream carries them all.
    this.server = http.createServer({ insecureHTTPParser: true }, (req, res) => {
      const now = performance.now();
      res.shouldKeepAlive = true; // never close the shared guestfwd stream
      const body = req.url === '/meta-data' ? `instance-id: "i-bare"\nlocal-hostname: "${hostname}"\n` : undefined;
      if (body === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '10' });
        res.end('not found\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
      this.resolveFirst(now);
    });
    this.server.keepAliveTimeout = 0;
    this.server.headersTimeout = 0;
    this.server.requestTimeout = 0;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Fallback argv, written out after src/core/qemu-args.ts minus what only a managed VM needs (daemonize, QMP, console socket). */
export function bareQemuArgs(t: TinyFiles, shape: VmShape, disk: string, consoleLog: string, mdPort: number): string[] {
  return [
    '-M', 'q35',
    '-accel', 'tcg',
    '-cpu', 'max',
    '-smp', String(shape.cpus),
    '-m', String(Math.floor(parseSize(shape.memory)! / 1024 ** 2)),
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    '-serial', `file:${consoleLog}`,
    '-drive', `file=${disk},format=qcow2,if=virtio,discard=unmap`,
    '-device', 'virtio-rng-pci',
    '-kernel', t.kernel, '-initrd', t.initrd, '-append', t.cmdline,
    '-netdev', `user,id=n0,restrict=on,net=169.254.169.0/24,guestfwd=tcp:169.254.169.254:80-tcp:127.0.0.1:${mdPort}`,
    '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:be:5c:01',
    '-smbios', 'type=1,serial=ds=nocloud-net;s=http://169.254.169.254/',
  ];
}

/** Options that only a managed VM has, with whether each takes a value. */
// `-no-shutdown` keeps a powered-off guest's QEMU for the agent's restart policy, and `-D`/`-trace`
// log its run state for the agent: plumbing too.
const MANAGED_ONLY: Record<string, boolean> = { '-name': true, '-daemonize': false, '-no-shutdown': false, '-pidfile': true, '-D': true, '-trace': true, '-qmp': true, '-chardev': true, '-serial': true };

/**
 * The baseline's argv derived from the command line Butter's agent really ran (read from
 * /proc), so both boot the same machine by construction: drop the managed-VM plumbing
 * (name, daemonize, pidfile, QMP, console socket), point the disk at our overlay and the
 * kernel/initrd at the same files `butter up` uploaded, and swap the tap for slirp. Undefined
 * when the command line has a shape this does not know (then bareQemuArgs is used).
 */
export function deriveBareArgs(butter: readonly string[], t: TinyFiles, disk: string, consoleLog: string, mdPort: number): string[] | undefined {
  const out: string[] = [];
  let netdevs = 0;
  for (let i = 0; i < butter.length; i++) {
    const a = butter[i]!;
    const v = butter[i + 1];
    if (a in MANAGED_ONLY) {
      if (MANAGED_ONLY[a]) i++;
      continue;
    }
    // A flag followed by another flag takes no value (`-nodefaults`, `-no-user-config`).
    if (v === undefined || !a.startsWith('-') || v.startsWith('-')) {
      out.push(a);
      continue;
    }
    if (a === '-drive') {
      if (!/^file=/.test(v)) return undefined;
      out.push(a, v.replace(/^file=(?:[^,]|,,)*/, `file=${disk}`));
    } else if (a === '-kernel') out.push(a, t.kernel);
    else if (a === '-initrd') out.push(a, t.initrd);
    else if (a === '-netdev') {
      const id = /(?:^|,)id=([^,]+)/.exec(v)?.[1];
      if (!v.startsWith('tap,') || !id || ++netdevs > 1) return undefined;
      out.push(a, `user,id=${id},restrict=on,net=169.254.169.0/24,guestfwd=tcp:169.254.169.254:80-tcp:127.0.0.1:${mdPort}`);
    } else if (a === '-device' && /^virtio-net-pci,/.test(v)) {
      out.push(a, v.replace(/,mac=[0-9a-f:]+/i, ',mac=52:54:00:be:5c:01'));
    } else out.push(a, v);
    i++;
  }
  if (netdevs !== 1 || !out.includes('-kernel')) return undefined;
  out.push('-serial', `file:${consoleLog}`);
  return out;
}

/** User + system CPU seconds a process has used so far (/proc/PID/stat; NaN when gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) counted from after the command name, which is field 2.
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export async function bareBoot(
  t: TinyFiles,
  shape: VmShape,
  workDir: string,
  tag: string,
  timeoutMs: number,
  butterArgs: readonly string[] | null,
): Promise<BareBoot & { args: string[]; derived: boolean }> {
  const disk = join(workDir, `${tag}.qcow2`);
  const consoleLog = join(workDir, `${tag}.console`);
  // Same size rule as Butter's driver: never smaller than the image.
  const info = JSON.parse((await execFileP('qemu-img', ['info', '--output=json', '-f', 'raw', t.rootImg])).stdout) as { 'virtual-size': number };
  const size = Math.max(parseSize(shape.disk)!, info['virtual-size']);
  await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', t.rootImg, disk, String(size)]);
  const md = new MetadataServer(`bare-${tag}`);
  await md.listen();
  const derivedArgs = butterArgs ? deriveBareArgs(butterArgs, t, disk, consoleLog, md.port) : undefined;
  const args = derivedArgs ?? bareQemuArgs(t, shape, disk, consoleLog, md.port);

  const stopWatch = watchConsole(() => consoleLog);
  const spawnAt = Date.now();
  const t0 = performance.now();
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  qemu.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<string>((resolve) => {
    qemu.once('exit', (code, signal) => resolve(`qemu exited (${code ?? signal}) before the metadata fetch: ${stderr.trim()}`));
    qemu.once('error', (e) => resolve(`qemu failed to start: ${e.message}`));
  });
  const kill = async () => {
    if (qemu.exitCode === null && qemu.signalCode === null) {
      qemu.kill('SIGKILL');
      await exited;
    }
  };
  const done = registerCleanup(`bare qemu ${qemu.pid}`, async () => {
    await kill();
    await md.close();
  });
  try {
    const first = await within(Promise.race([md.firstMetaData, exited]), timeoutMs, `no /meta-data within ${timeoutMs} ms`);
    if (typeof first === 'string') throw new Error(first);
    const totalMs = first - t0;
    // The "metadata fetched" line follows the fetch by a little: give it a moment.
    await sleep(300);
    const bootPhases = phases(spawnAt, stopWatch());
    const cpuShare = qemu.pid === undefined ? null : cpuSeconds(qemu.pid) / (totalMs / 1000);
    let guestBootS: number | null = null;
    const end = Date.now() + 15_000;
    while (guestBootS === null && Date.now() < end) {
      const m = existsSync(consoleLog) ? /butter-tiny: boot took ([\d.]+)s/.exec(readFileSync(consoleLog, 'utf8')) : null;
      if (m) guestBootS = Number(m[1]);
      else await sleep(200);
    }
    return { totalMs, cpuShare, phases: bootPhases, guestBootS, args, derived: derivedArgs !== undefined };
  } finally {
    stopWatch();
    await kill();
    await md.close();
    done();
    rmSync(disk, { force: true });
    rmSync(consoleLog, { force: true });
  }
}
