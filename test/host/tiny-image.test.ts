/**
 * Boots the `tiny` image (images/tiny) under QEMU/TCG against a fake metadata service and
 * checks the NoCloud contract: metadata fetch, a `#!` user-data script that runs once per
 * instance (persisted on /data across a restart), ACPI power-off via QMP, the
 * `#cloud-config` subset (hostname, write_files, runcmd), and a blueprint's MIME multipart
 * user-data (as `renderUserData` writes it).
 *
 * Guest networking is QEMU user mode with `restrict=on` (no traffic leaves QEMU) and a
 * guestfwd of 169.254.169.254:80 to the test's HTTP server on 127.0.0.1. Two slirp quirks
 * shape the setup: guestfwd only accepts an address inside the slirp network (hence
 * `net=169.254.169.0/24`), and a `tcp:` guestfwd target is ONE connection that QEMU opens at
 * start-up and reuses for every guest connection: two guest requests side by side (the
 * init fetches vendor-data and user-data so) share it, and an answer could reach the other
 * request. So the target is `cmd:socat`, which slirp spawns for each guest connection: one
 * host connection per guest connection, as with a real metadata server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseBlueprint, renderUserData } from '../../src/core/blueprint/index.ts';
import { requires } from '../requires.ts';

const execFileP = promisify(execFile);
const BUILD_SCRIPT = fileURLToPath(new URL('../../images/tiny/build.sh', import.meta.url));
const IMAGE_DIR = path.join(os.tmpdir(), 'butter-tiny-image');
const QEMU = 'qemu-system-x86_64';

const haveQemu = spawnSync(QEMU, ['--version']).status === 0 && spawnSync('qemu-img', ['--version']).status === 0;
const skip = requires(haveQemu, `${QEMU}/qemu-img not installed`) || requires(process.getuid?.() === 0, 'needs root (build.sh)');

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const uid = () => randomBytes(4).toString('hex');

interface Instance {
  instanceId: string;
  hostname: string;
  sshKeys: string[];
  userData: string;
  vendorData?: string;
}

/** Fake NoCloud metadata service. One per VM: each guest connection reaches it through a socat of its own. */
class MetadataServer {
  readonly requests: string[] = [];
  private readonly server: http.Server;
  port = 0;

  constructor(private readonly inst: Instance) {
    // insecureHTTPParser: llhttp otherwise rejects a second request on a connection whose
    // first request said `Connection: close` (kept from the shared stream a `tcp:` target was).
    this.server = http.createServer({ insecureHTTPParser: true }, (req, res) => this.handle(req, res));
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

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests.push(`${req.method} ${req.url}`);
    res.shouldKeepAlive = true; // never close the shared guestfwd stream
    let body: string | undefined;
    switch (req.url) {
      case '/meta-data':
        body =
          `instance-id: "${this.inst.instanceId}"\n` +
          `local-hostname: "${this.inst.hostname}"\n` +
          `public-keys:\n${this.inst.sshKeys.map((k) => `  - "${k}"\n`).join('')}`;
        break;
      case '/user-data':
        body = this.inst.userData;
        break;
      case '/vendor-data':
        body = this.inst.vendorData;
        break;
    }
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '10' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) });
    res.end(body);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

class Vm {
  readonly proc: ChildProcess;
  readonly exited: Promise<Exit>;
  exit?: Exit;
  stderr = '';
  readonly startedAt = Date.now();

  constructor(
    readonly name: string,
    readonly consolePath: string,
    readonly qmpPath: string,
    args: string[],
  ) {
    this.proc = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      this.proc.on('error', (e) => {
        this.stderr += String(e);
        this.exit = { code: -1, signal: null };
        resolve(this.exit);
      });
    });
  }

  async console(): Promise<string> {
    try {
      return await readFile(this.consolePath, 'utf8');
    } catch {
      return '';
    }
  }

  /** Waits until the console matches `re`; fails early if QEMU exits. */
  async waitConsole(re: RegExp, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await this.console();
      if (re.test(text)) return text;
      if (this.exit) assert.fail(`${this.name}: QEMU exited (${JSON.stringify(this.exit)}) before ${re}\n${this.stderr}\n--- console ---\n${text}`);
      if (Date.now() > deadline) assert.fail(`${this.name}: no ${re} within ${timeoutMs} ms\n--- console ---\n${text}`);
      await sleep(200);
    }
  }

  /** ACPI power button through QMP, as `system_powerdown`. */
  async powerdown(): Promise<void> {
    const sock = net.connect(this.qmpPath);
    let buf = '';
    const waiters: Array<(msg: Record<string, unknown>) => boolean> = [];
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        const i = waiters.findIndex((w) => w(msg));
        if (i >= 0) waiters.splice(i, 1);
      }
    });
    const next = (pred: (m: Record<string, unknown>) => boolean) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${this.name}: QMP timeout`)), 10_000);
        waiters.push((m) => {
          if (!pred(m)) return false;
          clearTimeout(t);
          resolve(m);
          return true;
        });
      });
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
      });
      await next((m) => 'QMP' in m);
      const send = async (cmd: string) => {
        const reply = next((m) => 'return' in m || 'error' in m);
        sock.write(JSON.stringify({ execute: cmd }) + '\n');
        const m = await reply;
        assert.ok('return' in m, `${this.name}: QMP ${cmd}: ${JSON.stringify(m)}`);
      };
      await send('qmp_capabilities');
      await send('system_powerdown');
    } finally {
      sock.destroy();
    }
  }

  /** Resolves with the exit status, or fails after `timeoutMs`. */
  async waitExit(timeoutMs: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name}: QEMU still running ${timeoutMs} ms after powerdown`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(): Promise<void> {
    if (this.exit) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }
}

describe('tiny image', { skip, timeout: 180_000 }, () => {
  let image: { kernel: string; initrd: string; rootImg: string; cmdline: string };
  let work: string;
  const vms: Vm[] = [];
  const servers: MetadataServer[] = [];
  let vmCount = 0;

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'butter-tiny-test-'));
    const t0 = Date.now();
    await execFileP('bash', [BUILD_SCRIPT, IMAGE_DIR], { timeout: 300_000 });
    const f = (n: string) => path.join(IMAGE_DIR, n);
    for (const n of ['vmlinuz', 'initrd.img', 'root.img', 'cmdline.txt']) assert.ok(existsSync(f(n)), `build made no ${n}`);
    image = { kernel: f('vmlinuz'), initrd: f('initrd.img'), rootImg: f('root.img'), cmdline: (await readFile(f('cmdline.txt'), 'utf8')).trim() };
    console.log(`# tiny image ready in ${Date.now() - t0} ms (${IMAGE_DIR})`);
  });

  after(async () => {
    await Promise.allSettled(vms.map((vm) => vm.kill()));
    await Promise.allSettled(servers.map((s) => s.close()));
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function metadata(inst: Instance): Promise<MetadataServer> {
    const s = new MetadataServer(inst);
    servers.push(s);
    await s.listen();
    return s;
  }

  async function overlay(name: string): Promise<string> {
    const p = path.join(work, `${name}.qcow2`);
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.rootImg, '-F', 'raw', p]);
    return p;
  }

  function boot(disk: string, md: MetadataServer): Vm {
    const name = `vm${++vmCount}`;
    const consolePath = path.join(work, `${name}.console`);
    const qmpPath = path.join(work, `${name}.qmp`);
    const args = [
      '-M', 'q35', '-accel', 'tcg', '-m', '256', '-smp', '1',
      '-nographic', '-no-reboot', '-monitor', 'none',
      '-serial', `file:${consolePath}`,
      '-qmp', `unix:${qmpPath},server=on,wait=off`,
      '-kernel', image.kernel, '-initrd', image.initrd, '-append', image.cmdline,
      '-drive', `file=${disk},if=virtio,format=qcow2`,
      '-netdev', `user,id=n0,restrict=on,net=169.254.169.0/24,guestfwd=tcp:169.254.169.254:80-cmd:socat - TCP:127.0.0.1:${md.port}`,
      // romfile= skips the iPXE option ROM: direct kernel boot never uses it.
      '-device', 'virtio-net-pci,netdev=n0,romfile=',
    ];
    const vm = new Vm(name, consolePath, qmpPath, args);
    vms.push(vm);
    return vm;
  }

  async function waitReady(vm: Vm): Promise<string> {
    const text = await vm.waitConsole(/^butter-tiny: ready\r?$/m, 60_000);
    const took = /butter-tiny: boot took ([\d.]+)s/.exec(text)?.[1];
    console.log(`# ${vm.name}: ready ${Date.now() - vm.startedAt} ms after spawn (guest uptime ${took ?? '?'} s)`);
    return text;
  }

  async function powerOff(vm: Vm): Promise<void> {
    await waitForFile(vm.qmpPath, 5_000);
    const t0 = Date.now();
    await vm.powerdown();
    const exit = await vm.waitExit(20_000);
    console.log(`# ${vm.name}: exited ${Date.now() - t0} ms after system_powerdown`);
    assert.deepEqual(exit, { code: 0, signal: null }, `${vm.name}: ${vm.stderr}`);
    const text = await vm.console();
    assert.match(text, /butter-tiny: shutting down/);
    assert.match(text, /butter-tiny: poweroff/);
    assert.doesNotMatch(text, /cannot unmount/);
  }

  test('#! user-data runs once per instance, /data persists, power button powers off', async () => {
    const id = uid();
    const iid = `i-${id}`;
    const md = await metadata({
      instanceId: iid,
      hostname: `tiny-${id}`,
      sshKeys: [`ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${id} test@butter`],
      userData: `#!/bin/sh\necho "USERDATA-MARKER-${id} on $(hostname)"\necho ${id} > /data/userdata-ran\nsync\n`,
      vendorData: `#!/bin/sh\necho "VENDOR-MARKER-${id}"\n`,
    });
    const disk = await overlay(`script-${id}`);

    // First boot: fetch, run user-data (and vendor-data) once.
    const vm1 = boot(disk, md);
    let text = await waitReady(vm1);
    assert.ok(md.requests.includes('GET /meta-data'), `requests: ${md.requests.join(', ')}`);
    assert.ok(md.requests.includes('GET /user-data'), `requests: ${md.requests.join(', ')}`);
    assert.ok(md.requests.includes('GET /vendor-data'), `requests: ${md.requests.join(', ')}`);
    assert.match(text, /^butter-tiny: ip=169\.254\.169\.\d+\r?$/m);
    assert.match(text, /^butter-tiny: cpus=1 mem_kb=\d+\r?$/m);
    assert.match(text, new RegExp(`^butter-tiny: metadata fetched instance-id=${iid}\\r?$`, 'm'));
    assert.match(text, /^butter-tiny: data disk \/dev\/vda mounted at \/data/m);
    assert.match(text, /^butter-tiny: ssh keys installed: 1/m);
    assert.match(text, new RegExp(`^USERDATA-MARKER-${id} on tiny-${id}\\r?$`, 'm'));
    assert.match(text, new RegExp(`^VENDOR-MARKER-${id}\\r?$`, 'm'));
    assert.doesNotMatch(text, /butter-tiny: error:/);
    await powerOff(vm1);

    // Second boot on the same overlay: the marker on /data says it already ran.
    const before2 = md.requests.length;
    const vm2 = boot(disk, md);
    text = await waitReady(vm2);
    assert.ok(md.requests.slice(before2).includes('GET /meta-data'), 'metadata fetched again on restart');
    assert.match(text, new RegExp(`^butter-tiny: user-data already ran for instance-id=${iid}\\r?$`, 'm'));
    assert.match(text, new RegExp(`^butter-tiny: vendor-data already ran for instance-id=${iid}\\r?$`, 'm'));
    assert.doesNotMatch(text, /USERDATA-MARKER-/);
    assert.doesNotMatch(text, /butter-tiny: error:/);
    await powerOff(vm2);
  });

  test('#cloud-config user-data: hostname, write_files, runcmd, ssh keys', async () => {
    const id = uid();
    const iid = `i-cc-${id}`;
    const host = `cc-${id}`;
    const md = await metadata({
      instanceId: iid,
      hostname: `meta-${id}`,
      sshKeys: [`ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAImeta${id} meta@butter`],
      userData: [
        '#cloud-config',
        `hostname: ${host}`,
        'ssh_authorized_keys:',
        `  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIcc${id} cc@butter`,
        'write_files:',
        '  - path: /etc/butter-test/hello.txt',
        '    content: |',
        `      hello ${id}`,
        '      second line',
        "    permissions: '0600'",
        `  - path: /data/plain.txt`,
        `    content: plain-${id}`,
        'runcmd:',
        '  - echo "RUNCMD-$(hostname)-$(head -n 1 /etc/butter-test/hello.txt | tr " " _)-$(wc -l < /etc/butter-test/hello.txt)"',
        "  - [ sh, -c, \"stat -c 'PERM-%a' /etc/butter-test/hello.txt\" ]",
        '  - echo "PLAIN-$(cat /data/plain.txt)"',
        '  - echo "KEYS-$(wc -l < /root/.ssh/authorized_keys)-$(stat -c %a /root/.ssh/authorized_keys)"',
        '',
      ].join('\n'),
    });
    const disk = await overlay(`cc-${id}`);
    const vm = boot(disk, md);
    const text = await waitReady(vm);
    assert.ok(md.requests.includes('GET /user-data'), `requests: ${md.requests.join(', ')}`);
    assert.match(text, new RegExp(`^butter-tiny: metadata fetched instance-id=${iid}\\r?$`, 'm'));
    assert.match(text, new RegExp(`^butter-tiny: hostname=${host}\\r?$`, 'm'));
    assert.match(text, /^butter-tiny: wrote \/etc\/butter-test\/hello\.txt\r?$/m);
    assert.match(text, new RegExp(`^RUNCMD-${host}-hello_${id}-2\\r?$`, 'm'));
    assert.match(text, /^PERM-600\r?$/m);
    assert.match(text, new RegExp(`^PLAIN-plain-${id}\\r?$`, 'm'));
    assert.match(text, /^KEYS-2-600\r?$/m);
    assert.match(text, /^butter-tiny: user-data cloud-config applied\r?$/m);
    assert.doesNotMatch(text, /butter-tiny: error:/);
    // The prompt shows the cloud-config hostname: the console shell is up.
    await vm.waitConsole(new RegExp(`root@${host}:`), 15_000);
    await powerOff(vm);
  });
  test('MIME multipart user-data from a blueprint: cloud-config parts merged and applied, then scripts, once per instance', async () => {
    const id = uid();
    const iid = `i-mime-${id}`;
    // Four files, rendered as a service's instance would get them: a cloud-config writing a
    // file, a script (non-ASCII, so a base64 part) printing it, a second cloud-config whose
    // hostname replaces the first's and that adds a runcmd, and a text/plain part.
    const bp = parseBlueprint(
      'instance: { memory: 256M, cpus: 1 }\nimage: { name: tiny }\ninitialization:\n  - path: a.yml\n  - path: s/run.sh\n  - path: b.yml\n  - path: notes.txt\n',
      'bp.yml',
    );
    const files = {
      'a.yml': `#cloud-config\nhostname: mime1-${id}\nwrite_files:\n  - path: /data/mime-${id}.txt\n    content: FROM-CC-${id}\n`,
      's/run.sh': `#!/bin/sh\necho "SCRIPT-SAW-$(cat /data/mime-${id}.txt)-ON-$(hostname)"\necho "grüße ✓ ${id}"\n`,
      'b.yml': `#cloud-config\nhostname: mime2-${id}\nruncmd:\n  - echo "RUNCMD-${id}"\n`,
      'notes.txt': `just notes ${id}\n`,
    };
    const userData = renderUserData(bp, { files, vars: {}, builtins: { service: 'mime', network: 'dev', index: 0, dnsName: 'mime.dev.internal' } });
    // The input really is what this test claims to exercise.
    assert.match(userData, /^Content-Type: multipart\/mixed; boundary=/);
    assert.match(userData, /^Content-Transfer-Encoding: base64$/m);
    const md = await metadata({ instanceId: iid, hostname: `meta-${id}`, sshKeys: [], userData });
    const disk = await overlay(`mime-${id}`);

    const vm1 = boot(disk, md);
    let text = await waitReady(vm1);
    assert.ok(md.requests.includes('GET /user-data'), `requests: ${md.requests.join(', ')}`);
    assert.doesNotMatch(text, /butter-tiny: error:/);
    assert.match(text, new RegExp(`^butter-tiny: hostname=mime2-${id}\\r?$`, 'm'));
    assert.doesNotMatch(text, new RegExp(`hostname=mime1-${id}`), 'the later part\'s hostname wins');
    assert.match(text, /^butter-tiny: user-data: ignoring part 3-notes\.txt \(text\/plain\)\r?$/m);
    // In order: the file is written, the script sees it (and the later hostname), then runcmd
    // (cloud-init runs it with the part scripts, sorted by name: "1-run.sh" < "runcmd").
    const order = [
      new RegExp(`^butter-tiny: wrote /data/mime-${id}\\.txt\\r?$`, 'm'),
      new RegExp(`^SCRIPT-SAW-FROM-CC-${id}-ON-mime2-${id}\\r?$`, 'm'),
      new RegExp(`^grüße ✓ ${id}\\r?$`, 'm'),
      new RegExp(`^RUNCMD-${id}\\r?$`, 'm'),
    ];
    let at = -1;
    for (const re of order) {
      const m = re.exec(text);
      assert.ok(m, `no ${re} on the console:\n${text}`);
      assert.ok(m.index > at, `${re} came before the line expected ahead of it:\n${text}`);
      at = m.index;
    }
    await powerOff(vm1);

    // Restart: hostname again (every boot), the scripts and write_files not.
    const vm2 = boot(disk, md);
    text = await waitReady(vm2);
    assert.match(text, new RegExp(`^butter-tiny: hostname=mime2-${id}\\r?$`, 'm'));
    assert.match(text, new RegExp(`^butter-tiny: user-data already ran for instance-id=${iid}\\r?$`, 'm'));
    assert.doesNotMatch(text, /SCRIPT-SAW-|RUNCMD-|butter-tiny: wrote /);
    assert.doesNotMatch(text, /butter-tiny: error:/);
    await powerOff(vm2);
  });
});

async function waitForFile(p: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(p)) {
    if (Date.now() > deadline) assert.fail(`${p} did not appear`);
    await sleep(50);
  }
}
