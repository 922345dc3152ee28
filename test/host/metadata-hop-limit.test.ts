/**
 * The EC2-style metadata service through a real gateway namespace: a namespace plays the host
 * (bridge, gateway namespace and nft from LinuxNetworkHost, and the agent's metadata server),
 * one plays a VM on the network, and one plays a container behind that VM's own NAT, as
 * Docker's default bridge makes it (a veth into the VM, which forwards and masquerades).
 *
 * What it shows: the VM gets IMDSv2 tokens and tokenless (IMDSv1) answers; the container gets
 * tokenless answers too (optional mode) but no token, because token replies leave the gateway
 * namespace with IP TTL 1 and the VM's forwarding drops them; and stock cloud-init 22.4's EC2
 * crawler (extracted from Debian's package, never installed) reads the VM's data.
 * Nothing here has a route out of the namespaces, and apt-get download is the only outside use.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemExec, type ExecOptions } from '../../src/agent/host/exec.ts';
import { LinuxNetworkHost } from '../../src/agent/host/linux-network.ts';
import { NetnsExec } from '../../src/agent/host/netns-exec.ts';
import type { LocalNetwork } from '../../src/agent/host/network.ts';
import type { VmMetadata } from '../../src/agent/metadata/types.ts';
import { UPLINK_TABLE_BASE, uplinkOf } from '../../src/core/gateway-ns.ts';
import { requires } from '../requires.ts';

const id = randomBytes(3).toString('hex');
const NS = `bt-mdh-${id}`; // the host
const GUEST = `bt-mdg-${id}`; // a VM on the network
const CTR = `bt-mdc-${id}`; // a container inside that VM
const GW = `bt-mdw-${id}-`; // gateway namespaces: this plus the network's name
const VETH_HOST = `vh${id}`; // the VM's "tap", a bridge port in the host
const VETH_GUEST = `vg${id}`;
const DOCKER0 = `vd${id}`; // the VM's end of the container's link (docker0's role)
const BRIDGE = `btb${id}`;
const GUEST_MAC = '52:54:00:3b:00:0a';
const GUEST_IP = '10.233.0.10';
const VNI = 101;
const uplink = { device: `bu${id}`, ...uplinkOf(VNI), table: UPLINK_TABLE_BASE + VNI };
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@example.com';

const md = (tokens: VmMetadata['metadataTokens']): VmMetadata => ({
  vmId: 'vm1id',
  instanceId: 'i-vm1id',
  hostname: 'vm1',
  localIpv4: GUEST_IP,
  mac: GUEST_MAC,
  userData: '#cloud-config\nruncmd: [echo hello]\n',
  vendorData: '',
  sshKeys: [KEY],
  metadataTokens: tokens,
});

const network: LocalNetwork = {
  name: 'md',
  bridge: BRIDGE,
  cidr: '10.233.0.0/24',
  gateway: '10.233.0.1',
  mtu: 1400,
  nat: false,
  dnsForward: false,
  ports: [{ tap: VETH_HOST, mac: GUEST_MAC, ip: GUEST_IP, hostname: 'vm1' }],
  gatewayPort: `bg${id}`,
  uplink,
};

const canRun = process.getuid?.() === 0 && existsSync('/usr/sbin/dnsmasq');
const sys = new SystemExec();
const inGuest = (...args: string[]) => sys.run('ip', ['netns', 'exec', GUEST, ...args]);
const inCtr = (...args: string[]) => sys.run('ip', ['netns', 'exec', CTR, ...args]);

let work: string;
let server: ChildProcess | undefined;

/** (Re)starts the metadata server in the host namespace on the uplink, as the agent does. */
async function serve(tokens: VmMetadata['metadataTokens']): Promise<void> {
  await stopServer();
  const config = JSON.stringify({ address: uplink.root, port: 80, vms: { [GUEST_IP]: md(tokens) } });
  const child = spawn('ip', ['netns', 'exec', NS, process.execPath, '--import', 'tsx', join(import.meta.dirname, 'metadata-serve.ts'), config], { stdio: ['ignore', 'pipe', 'inherit'] });
  server = child;
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    child.on('exit', (code) => reject(new Error(`metadata server exited (${code})`)));
  });
}

async function stopServer(): Promise<void> {
  const child = server;
  server = undefined;
  if (!child || child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

/** curl from a namespace; `-m` bounds it, so a reply that never comes is exit code 28. */
function curl(ns: string, path: string, opts: { put?: boolean; headers?: string[]; maxSeconds?: number; host?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = ['netns', 'exec', ns, 'curl', '-sS', '-m', String(opts.maxSeconds ?? 5), '-w', '\\n%{http_code}'];
  if (opts.put) args.push('-X', 'PUT');
  for (const h of opts.headers ?? []) args.push('-H', h);
  args.push(`http://${opts.host ?? '169.254.169.254'}${path}`);
  const run: ExecOptions = { allowFail: true, timeoutMs: 20_000 };
  return sys.run('ip', args, run);
}

/** Body and status of a curl that completed. */
function reply(r: { code: number; stdout: string; stderr: string }): { status: string; body: string } {
  assert.equal(r.code, 0, `curl failed: ${r.stderr}`);
  const cut = r.stdout.lastIndexOf('\n');
  return { body: r.stdout.slice(0, cut), status: r.stdout.slice(cut + 1) };
}

const TTL = 'X-aws-ec2-metadata-token-ttl-seconds: 60';

before(async () => {
  if (!canRun) return;
  work = mkdtempSync(join(tmpdir(), 'bt-md-'));
  chmodSync(work, 0o755); // dnsmasq's unprivileged user reads its files under it
  await sys.run('ip', ['netns', 'add', NS]);
  await sys.run('ip', ['netns', 'add', GUEST]);
  await sys.run('ip', ['netns', 'add', CTR]);
  await sys.run('ip', ['link', 'add', VETH_HOST, 'netns', NS, 'type', 'veth', 'peer', 'name', VETH_GUEST, 'netns', GUEST]);
  await inGuest('ip', 'link', 'set', VETH_GUEST, 'address', GUEST_MAC, 'up');
  await inGuest('ip', 'link', 'set', 'lo', 'up');
  await inGuest('ip', 'addr', 'add', `${GUEST_IP}/24`, 'dev', VETH_GUEST);
  await inGuest('ip', 'route', 'add', 'default', 'via', network.gateway);
  // The container: its own namespace behind the VM, forwarded and masqueraded by the VM.
  await sys.run('ip', ['link', 'add', DOCKER0, 'netns', GUEST, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', CTR]);
  await inGuest('ip', 'addr', 'add', '172.31.0.1/24', 'dev', DOCKER0);
  await inGuest('ip', 'link', 'set', DOCKER0, 'up');
  await inGuest('sysctl', '-qw', 'net.ipv4.ip_forward=1');
  await sys.run('ip', ['netns', 'exec', GUEST, 'nft', '-f', '-'], {
    input: `table ip docker {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat;\n\t\toifname "${VETH_GUEST}" ip saddr 172.31.0.0/24 masquerade\n\t}\n}\n`,
  });
  await inCtr('ip', 'link', 'set', 'lo', 'up');
  await inCtr('ip', 'addr', 'add', '172.31.0.2/24', 'dev', 'eth0');
  await inCtr('ip', 'link', 'set', 'eth0', 'up');
  await inCtr('ip', 'route', 'add', 'default', 'via', '172.31.0.1');

  writeFileSync(join(work, 'resolv.conf'), 'nameserver 198.18.0.1\n');
  const host = new LinuxNetworkHost({ exec: new NetnsExec(sys, NS), stateDir: join(work, 'state'), netnsPrefix: GW, resolvFile: join(work, 'resolv.conf') });
  await host.apply([network]);
  await serve('optional');
});

after(async () => {
  if (!canRun || !work) return;
  await stopServer();
  // dnsmasq (and anything else still on our files) by pid, before its namespace goes.
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(work)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (const ns of [CTR, GUEST, ...readdirSync('/run/netns').filter((n) => n.startsWith(GW)), NS]) await sys.run('ip', ['netns', 'del', ns], { allowFail: true });
  rmSync(work, { recursive: true, force: true });
});

const skip = requires(canRun, 'needs root and dnsmasq');

test('the VM gets an IMDSv2 token and reads with it; tokenless (IMDSv1) reads work too', { skip }, async () => {
  const put = reply(await curl(GUEST, '/latest/api/token', { put: true, headers: [TTL] }));
  assert.equal(put.status, '200');
  assert.match(put.body, /^[A-Za-z0-9_-]{43}$/);
  const withToken = reply(await curl(GUEST, '/latest/meta-data/instance-id', { headers: [`X-aws-ec2-metadata-token: ${put.body}`] }));
  assert.deepEqual(withToken, { status: '200', body: 'i-vm1id' });
  assert.deepEqual(reply(await curl(GUEST, '/2009-04-04/meta-data/instance-id')), { status: '200', body: 'i-vm1id' });
  assert.deepEqual(reply(await curl(GUEST, '/latest/meta-data/instance-id', { headers: ['X-aws-ec2-metadata-token: forged'] })).status, '401');
});

test('a container behind the VM gets no token (its reply has TTL 1), yet its tokenless reads work', { skip }, async () => {
  // Tokenless first: the path through the VM's NAT works, so what follows is the hop limit.
  assert.deepEqual(reply(await curl(CTR, '/2009-04-04/meta-data/instance-id')), { status: '200', body: 'i-vm1id' });
  const put = await curl(CTR, '/latest/api/token', { put: true, headers: [TTL], maxSeconds: 3 });
  assert.equal(put.code, 28, `the token reply never arrives (curl timed out after connecting): ${put.stderr} ${put.stdout}`);
  assert.doesNotMatch(put.stdout, /[A-Za-z0-9_-]{43}/);
  // ... while the VM itself, on the same path minus one hop, still gets one.
  assert.equal(reply(await curl(GUEST, '/latest/api/token', { put: true, headers: [TTL] })).status, '200');
  assert.deepEqual(reply(await curl(CTR, '/latest/meta-data/local-ipv4')), { status: '200', body: GUEST_IP });
});

test("the metadata server's own address (the uplink's host end) is reached only through 169.254.169.254: no token, no data around the hop limit", { skip }, async () => {
  // A container that skips the DNAT and asks the listener directly would have its replies
  // routed like any other; they must not even connect (nor for the VM itself).
  for (const ns of [CTR, GUEST]) {
    const put = await curl(ns, '/latest/api/token', { put: true, headers: [TTL], maxSeconds: 3, host: uplink.root });
    assert.notEqual(put.code, 0, `${ns === CTR ? 'the container' : 'the VM'} reached ${uplink.root} directly: ${put.stdout}`);
    assert.doesNotMatch(put.stdout, /[A-Za-z0-9_-]{43}/);
    assert.notEqual((await curl(ns, '/meta-data', { maxSeconds: 3, host: uplink.root })).code, 0);
  }
  // The way in still works.
  assert.equal(reply(await curl(GUEST, '/latest/api/token', { put: true, headers: [TTL] })).status, '200');
});

test('required tokens: the container gets nothing from the EC2 paths; the VM reads with a token', { skip }, async () => {
  await serve('required');
  try {
    assert.equal(reply(await curl(CTR, '/2009-04-04/meta-data/instance-id')).status, '401');
    assert.equal(reply(await curl(GUEST, '/2009-04-04/meta-data/instance-id')).status, '401');
    const token = reply(await curl(GUEST, '/latest/api/token', { put: true, headers: [TTL] })).body;
    assert.deepEqual(reply(await curl(GUEST, '/2009-04-04/meta-data/instance-id', { headers: [`X-aws-ec2-metadata-token: ${token}`] })), { status: '200', body: 'i-vm1id' });
    assert.notEqual((await curl(CTR, '/latest/api/token', { put: true, headers: [TTL], maxSeconds: 3 })).code, 0);
  } finally {
    await serve('optional');
  }
});

test('a container that advertises a tiny TCP window, so replies come in pieces too small to recognise, still gets no token', { skip }, async () => {
  // Its own stack, made hostile: no window scaling, and every segment it sends offers 24 bytes (less than the 33 the marker needs).
  await inCtr('sysctl', '-qw', 'net.ipv4.tcp_window_scaling=0');
  await sys.run('ip', ['netns', 'exec', CTR, 'nft', '-f', '-'], {
    input: 'table ip hostile {\n\tchain output {\n\t\ttype filter hook output priority mangle;\n\t\ttcp dport 80 tcp window set 24\n\t}\n}\n',
  });
  try {
    // The VM's copy of the same exchange gets a token (the server is not the obstacle).
    assert.equal(reply(await curl(GUEST, '/latest/api/token', { put: true, headers: [TTL] })).status, '200');
    const put = await curl(CTR, '/latest/api/token', { put: true, headers: [TTL], maxSeconds: 10 });
    assert.equal(put.code, 28, `no token reply arrives: ${put.stderr} ${put.stdout}`);
    assert.doesNotMatch(put.stdout, /[A-Za-z0-9_-]{43}/);
  } finally {
    await inCtr('nft', 'delete', 'table', 'ip', 'hostile');
    await inCtr('sysctl', '-qw', 'net.ipv4.tcp_window_scaling=1');
  }
});

/**
 * Debian 12's cloud-init (22.4), unpacked into `dir`, never installed: its EC2 crawler is
 * imported from there. Its Python dependencies are Debian packages (scripts/install.sh).
 */
function unpackCloudInit(dir: string): string {
  execFileSync('apt-get', ['download', 'cloud-init'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
  const deb = readdirSync(dir).find((f) => f.startsWith('cloud-init_') && f.endsWith('.deb'));
  assert.ok(deb, 'apt-get download cloud-init gave no package');
  assert.match(deb, /^cloud-init_22\.4\./, 'the cloud-init of Debian 12');
  execFileSync('dpkg-deb', ['-x', join(dir, deb), join(dir, 'root')]);
  return join(dir, 'root/usr/lib/python3/dist-packages');
}

const CRAWL = `
import json
from cloudinit.sources.helpers import ec2
base = "http://169.254.169.254"
md = ec2.get_instance_metadata("2009-04-04", base)
ud = ec2.get_instance_userdata("2009-04-04", base)
print(json.dumps({"md": md, "ud": ud.decode() if isinstance(ud, bytes) else ud}))
`;

test("stock cloud-init 22.4's EC2 crawler, run in the VM, reads its meta-data tree and user-data (tokenless, as off AWS)", { skip }, async () => {
  const deps = await sys.run('/usr/bin/python3', ['-c', 'import requests, configobj, yaml'], { allowFail: true });
  assert.equal(deps.code, 0, `cloud-init's Python dependencies are missing (scripts/install.sh installs them): ${deps.stderr}`);
  const path = unpackCloudInit(work);
  const out = await inGuestEnv({ PYTHONPATH: path }, '/usr/bin/python3', '-c', CRAWL);
  const got = JSON.parse(out) as { md: Record<string, unknown>; ud: string };
  assert.equal(got.md['instance-id'], 'i-vm1id');
  assert.equal(got.md['local-hostname'], 'vm1');
  assert.equal(got.md['local-ipv4'], GUEST_IP);
  assert.equal(got.md['mac'], GUEST_MAC);
  // "0=key-0" in public-keys/ is followed to 0/openssh-key; a value with a newline is split into lines.
  assert.deepEqual(got.md['public-keys'], { 'key-0': [KEY] });
  assert.equal(got.ud, md('optional').userData);
});

/** A command in the VM's namespace with extra environment; its standard output. */
async function inGuestEnv(env: Record<string, string>, ...args: string[]): Promise<string> {
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return (await sys.run('ip', ['netns', 'exec', GUEST, 'env', ...assignments, ...args], { timeoutMs: 120_000 })).stdout;
}
