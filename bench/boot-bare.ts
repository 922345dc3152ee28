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
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseSize } from '../src/core/units.ts';
import { registerCleanup } from './cleanup.ts';
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

/** The argv, mirroring src/core/qemu-args.ts minus what only a managed VM needs (daemonize, QMP, console socket). */
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

export async function bareBoot(t: TinyFiles, shape: VmShape, workDir: string, tag: string, timeoutMs: number): Promise<BareBoot & { args: string[] }> {
  const disk = join(workDir, `${tag}.qcow2`);
  const consoleLog = join(workDir, `${tag}.console`);
  // Same size rule as Butter's driver: never smaller than the image.
  const info = JSON.parse((await execFileP('qemu-img', ['info', '--output=json', '-f', 'raw', t.rootImg])).stdout) as { 'virtual-size': number };
  const size = Math.max(parseSize(shape.disk)!, info['virtual-size']);
  await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', t.rootImg, disk, String(size)]);
  const md = new MetadataServer(`bare-${tag}`);
  await md.listen();
  const args = bareQemuArgs(t, shape, disk, consoleLog, md.port);

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
    let guestBootS: number | null = null;
    const end = Date.now() + 15_000;
    while (guestBootS === null && Date.now() < end) {
      const m = existsSync(consoleLog) ? /butter-tiny: boot took ([\d.]+)s/.exec(readFileSync(consoleLog, 'utf8')) : null;
      if (m) guestBootS = Number(m[1]);
      else await sleep(200);
    }
    return { totalMs, guestBootS, args };
  } finally {
    await kill();
    await md.close();
    done();
    rmSync(disk, { force: true });
    rmSync(consoleLog, { force: true });
  }
}
