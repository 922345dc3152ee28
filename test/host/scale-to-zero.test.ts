// Scale to zero for real (issue 16): two namespace machines joined by the WireGuard mesh, real
// agents, QEMU guests of the tiny image under TCG. A service `sleepy` (busybox httpd on 80,
// `instance.idle_stop: 10s`, published by `path add 0.0.0.0/0 sleepy 80`) is suspended by its
// node after its idle time, its power still `running`; nothing wakes it while nobody calls
// (not the agent's own restart either: the restarted agent holds its taps again). A TCP
// connection from a VM on the other machine, across the mesh, wakes it and gets its answer
// with no reset; once it sleeps again, a connection through the published port from a LAN
// machine does the same. Each wake is one `wake` event (tcp, port 80), each sleep one
// `idle-suspend`; and no other wake happened.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Service } from '../../src/api/schemas/service.ts';
import { NamespaceCluster } from './cluster-harness.ts';

let c: NamespaceCluster;
let lan: ReturnType<NamespaceCluster['addLanHost']>;
const t0 = Date.now();

const BLUEPRINT = `network: { subnetwork_max_instance_count: 8 }
placement: { availability_zones: 1 }
count: 1
instance:
  public_ip: true
  memory: 192MB
  cpus: 1
  idle_stop: 10s
image: { name: tiny }
initialization:
  - path: web.sh
`;

const WEB = `#!/bin/sh
mkdir -p /www && echo "sleepy answers" > /www/index.html
httpd -p 80 -h /www
`;

before(async () => {
  c = new NamespaceCluster();
  await c.startServer();
  await c.addNode('n1', 'east');
  await c.addNode('n2', 'west');
  const { buildTiny } = await import('../../src/daemon/tiny-image.ts');
  const t = await buildTiny(`${c.dir}/tiny`);
  ok(['image', 'add', 'tiny', '--kernel', t.kernel, '--initrd', t.initrd, '--root-disk', t.rootDisk, '--cmdline', t.cmdline]);
  ok(['network', 'create', 'lan', '--cidr', '10.41.0.0/24']);
  mkdirSync(`${c.dir}/sleepy`);
  writeFileSync(`${c.dir}/sleepy/service.yml`, BLUEPRINT);
  writeFileSync(`${c.dir}/sleepy/web.sh`, WEB);
  lan = c.addLanHost();
});

after(async () => {
  if (process.env.BUTTER_TEST_DEBUG) console.error(c?.log);
  // Its cleanup kills whatever runs with a path under the cluster's directory: QEMU, and the activators' socat (`-lf` there).
  await c?.cleanup();
  console.log(`# scale-to-zero host test: ${Math.round((Date.now() - t0) / 1000)} s in all`);
});

function ok(args: string[]): string {
  const r = c.cli(args);
  assert.equal(r.code, 0, `butter ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
interface ShownVm { name: string; state: string; power: string; reason: string | null; idleStop: string | null; node: string; ip: string }
const vm = (name: string) => c.json<ShownVm>(['vm', 'show', name, '--json']);
const events = (name: string, action: string) => c.json<{ action: string; message: string }[]>(['events', '--resource', 'vm', '--name', name, '--limit', '1000', '--json']).filter((e) => e.action === action);
const logs = (name: string) => c.cli(['vm', 'logs', name]).stdout;

/** Types a command printing `TAG-<answer>` into a VM's console once; its answer, or undefined after `ms`. */
async function typeOnce(name: string, cmd: (tag: string) => string, ms: number): Promise<string | undefined> {
  const tag = `q${randomBytes(3).toString('hex')}`;
  const re = new RegExp(`^${tag}-(.*?)\\r?$`, 'm');
  const r = c.cli(['vm', 'console', name], `\n${cmd(tag)}\n`);
  assert.equal(r.code, 0, r.stderr);
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const m = re.exec(logs(name));
    if (m) return m[1]!;
    await sleep(500);
  }
  return undefined;
}

/** The same, typed again until the guest's shell answers (it may not listen yet right after boot). */
async function ask(name: string, cmd: (tag: string) => string): Promise<string> {
  for (let i = 0; i < 12; i++) {
    const a = await typeOnce(name, cmd, 10_000);
    if (a !== undefined) return a;
  }
  throw new Error(`${name} never answered on its console\n${logs(name).slice(-2000)}`);
}

/** An HTTP GET from a LAN machine (not a node) through a published port: the body, or what went wrong (a reset shows as `refused`/`reset`). */
function lanGet(to: string, port: number): string {
  const script = [
    'import socket',
    `s = socket.create_connection(("${to}", ${port}), timeout=30)`,
    's.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n"); d = b""',
    'while True:',
    '  x = s.recv(4096)',
    '  if not x: break',
    '  d += x',
    'print(d.decode().split("\\r\\n\\r\\n", 1)[-1].strip())',
  ].join('\n');
  const r = lan.run('python3', ['-c', script]);
  if (r.code === 0) return r.stdout.trim();
  return /ConnectionRefused/.test(r.stderr) ? 'refused' : /ConnectionReset/.test(r.stderr) ? 'reset' : /timed out|TimeoutError/.test(r.stderr) ? 'timeout' : `error: ${r.stderr.trim().split('\n').at(-1)}`;
}

const nodeIp = (name: string) => /inet (\S+)\//.exec(c.inNode(name, 'ip', ['-4', '-o', 'addr', 'show', 'eth0']).stdout)![1]!;
const asleep = (name: string) => {
  const v = vm(name);
  return v.state === 'suspended' && v.power === 'running';
};

test('an idle service instance sleeps; a connection from a VM on the other machine, and one through a published port, wake it and get its answer', async () => {
  ok(['service', 'create', 'lan', 'sleepy', '--blueprint', `${c.dir}/sleepy/service.yml`, '--wait']);
  ok(['path', 'add', '0.0.0.0/0', 'sleepy', '80']);
  const inst = c.json<Service>(['service', 'show', 'sleepy']).instances[0]!;
  const [name, home, ip] = [inst.name, inst.node!, inst.ip!];
  const other = home === 'n1' ? 'n2' : 'n1';
  assert.equal(vm(name).idleStop, '10s', 'the blueprint gives each instance its idle time');
  assert.match(ok(['vm', 'show', name]), /idle stop:\s+after 10s without traffic/);
  // The caller, on the other machine: the connection crosses the mesh (VXLAN in WireGuard).
  ok(['vm', 'create', 'caller', '--image', 'tiny', '--memory', '192M', '--disk', '1G', '--network', 'lan', '--node', other, '--wait']);
  assert.equal(await ask('caller', (t) => `echo ${t}-up`), 'up');

  const slept = await c.until(`${name} asleep`, () => asleep(name), 120_000);
  const s = vm(name);
  assert.equal(s.reason, 'idle for 10s');
  assert.equal(events(name, 'idle-suspend').length, 1);
  console.log(`# ${name} asleep ${Math.round(slept / 1000)} s after the caller was up`);

  // Its agent killed and started again while it sleeps: the new one holds its taps again.
  await c.killAgent(home);
  c.startAgent(home);
  await sleep(6000);
  assert.ok(asleep(name), 'nothing woke it: not the agent restart, not the idle network');
  assert.equal(events(name, 'wake').length, 0);

  // A TCP connection from the caller: it wakes the VM and gets the page (busybox nc prints nothing on a reset).
  const page = await typeOnce('caller', (t) => `echo "${t}-$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 40 nc -w 30 ${ip} 80 | tail -1)"`, 60_000);
  assert.equal(page, 'sleepy answers', 'the connection that woke it was answered, no reset');
  await c.until(`${name} running`, () => vm(name).state === 'running', 30_000);
  const woke = events(name, 'wake');
  assert.equal(woke.length, 1, woke.map((e) => e.message).join('\n'));
  assert.match(woke[0]!.message, /woken by tcp to port 80: running again \d+ ms after it arrived/);
  console.log(`# ${woke[0]!.message}`);

  // Asleep again; then a LAN machine through the published port of the other node (over the mesh).
  await c.until(`${name} asleep again`, () => asleep(name), 120_000);
  assert.equal(events(name, 'idle-suspend').length, 2);
  assert.equal(lanGet(nodeIp(other), 80), 'sleepy answers', 'through the published port, no reset');
  await c.until(`${name} running`, () => vm(name).state === 'running', 30_000);
  const all = events(name, 'wake');
  assert.equal(all.length, 2, `one wake per connection, nothing else: ${all.map((e) => e.message).join('\n')}`);
  assert.match(all[1]!.message, /woken by tcp to port 80/);
  console.log(`# ${all[1]!.message}`);
});
