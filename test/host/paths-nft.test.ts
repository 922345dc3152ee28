/**
 * The paths table (core/paths/nft-paths.ts) against the real kernel, in throwaway network
 * namespaces: a big model (1,000 services, 5,000 paths) checks and loads, and the kernel holds
 * every element rendered (overlapping paths spread over sets it accepts); its size and load
 * times are printed, not asserted. Then real packets over a real bridge with br_netfilter:
 * a TCP SYN on a path reaches the destination instance and its answer comes back; one on no
 * path never reaches it; an open connection survives a change that keeps its path and is cut
 * by one that removes it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { SystemExec } from '../../src/agent/host/exec.ts';
import { intToIp, ipToInt } from '../../src/core/ipv4.ts';
import type { Path, PathModel, Proto, ServiceBlock } from '../../src/core/paths/model.ts';
import { renderPathsRuleset, type PathsNetwork } from '../../src/core/paths/nft-paths.ts';
import { requires } from '../requires.ts';

const id = randomBytes(3).toString('hex');
const BIG = `bt-pth-${id}`;
const MACHINE = `bt-pthm-${id}`;
const A = `bt-ptha-${id}`;
const B = `bt-pthb-${id}`;
const ALL = [BIG, MACHINE, A, B];

const canRun = process.getuid?.() === 0 && existsSync('/usr/sbin/nft') && existsSync('/proc/sys/net/bridge');
const skip = requires(canRun, 'needs root, nft and br_netfilter');
const sys = new SystemExec();
const made: string[] = [];
const procs: ChildProcessWithoutNullStreams[] = [];

async function netns(name: string): Promise<void> {
  await sys.run('ip', ['netns', 'add', name]);
  made.push(name);
  await sys.run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
}
const inNs = (ns: string, args: string[], input?: string) => sys.run('ip', ['netns', 'exec', ns, ...args], input === undefined ? { timeoutMs: 120_000 } : { input, timeoutMs: 120_000 });

before(async () => {
  if (!canRun) return;
  for (const n of ALL) await sys.run('ip', ['netns', 'del', n], { allowFail: true });
});

after(async () => {
  for (const p of procs) if (p.exitCode === null && p.pid) process.kill(p.pid, 'SIGKILL');
  for (const n of made) await sys.run('ip', ['netns', 'del', n], { allowFail: true });
});

/** A deterministic generator (mulberry32), so a run's figures can be compared with another's. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** 10 networks of 100 services (a /26 each: 10,000 instances' worth of room), 5,000 paths. */
function bigModel(): { model: PathModel; networks: PathsNetwork[] } {
  const r = rng(14);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const networks: PathsNetwork[] = [];
  const services: ServiceBlock[] = [];
  for (let n = 0; n < 10; n++) {
    const base = ipToInt(`10.${100 + n}.0.0`);
    networks.push({ name: `net${n}`, bridge: `bt-net${n}`, gateway: intToIp(base + 1) });
    for (let s = 0; s < 100; s++) services.push({ network: `net${n}`, name: `n${n}s${s}`, block: `${intToIp(base + 64 * (s + 1))}/26` });
  }
  const paths: Path[] = [];
  while (paths.length < 5000) {
    const to = pick(services);
    const same = services.filter((s) => s.network === to.network);
    const kind = r();
    const from: Path['from'] =
      kind < 0.6
        ? { service: pick(same).name }
        : kind < 0.7
          ? { cidr: '0.0.0.0/0' }
          : kind < 0.85
            ? { cidr: `192.168.${Math.floor(r() * 256)}.0/24` }
            : { cidr: `${intToIp(Math.floor(r() * 2 ** 32))}/32` };
    const lo = 1 + Math.floor(r() * 9000);
    const ports: [number, number] = r() < 0.8 ? [lo, lo] : [lo, lo + Math.floor(r() * 100)];
    paths.push({ network: to.network, from, to: to.name, proto: pick<Proto>(['tcp', 'udp']), ports });
  }
  return { model: { services, paths }, networks };
}

test('a ruleset for 1,000 services and 5,000 paths checks and loads; the kernel holds every element', { skip }, async (t) => {
  const { model, networks } = bigModel();
  const t0 = performance.now();
  const text = renderPathsRuleset(model, networks);
  const renderMs = performance.now() - t0;
  const rendered = [...text.matchAll(/set (paths_\d+) \{[^}]*?elements = \{ ([^}]*) \}/g)].map((m) => ({ set: m[1]!, count: m[2]!.split(', ').length }));
  await netns(BIG);

  const c0 = performance.now();
  await inNs(BIG, ['nft', '-c', '-f', '-'], text);
  const checkMs = performance.now() - c0;
  const l0 = performance.now();
  await inNs(BIG, ['nft', '-f', '-'], text);
  const loadMs = performance.now() - l0;
  // Applying it again is the path-change case: the table is swapped in one transaction.
  const r0 = performance.now();
  await inNs(BIG, ['nft', '-f', '-'], text);
  const replaceMs = performance.now() - r0;

  const listed = JSON.parse((await inNs(BIG, ['nft', '-j', 'list', 'table', 'inet', 'butter_paths'])).stdout) as { nftables: { set?: { name: string; elem?: unknown[] } }[] };
  const sets = new Map(listed.nftables.flatMap((o) => (o.set ? [[o.set.name, o.set.elem?.length ?? 0] as const] : [])));
  for (const { set, count } of rendered) assert.equal(sets.get(set), count, `the kernel's ${set} holds what was rendered`);
  assert.equal(sets.get('instances'), 1000);
  const elements = rendered.reduce((a, s) => a + s.count, 0);
  assert.ok(elements > 4900 && elements <= 5000, `about one element per path (duplicates once): ${elements}`);

  const figures = `paths table for 1,000 services, 5,000 paths (10 networks): ${(text.length / 1024).toFixed(0)} KiB of text, ${elements} path elements in ${rendered.length} set(s) (${rendered.map((s) => `${s.set}: ${s.count}`).join(', ')}); render ${renderMs.toFixed(0)} ms, nft -c ${checkMs.toFixed(0)} ms, load ${loadMs.toFixed(0)} ms, replace ${replaceMs.toFixed(0)} ms`;
  t.diagnostic(figures);
  console.log(figures);
});

test('the kernel accepts every shape the renderer makes: 40 random models with overlapping paths, /0 to /32, ports 1 to 65535', { skip }, async () => {
  if (!made.includes(BIG)) await netns(BIG);
  const r = rng(1414);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  let layered = 0;
  for (let run = 0; run < 40; run++) {
    const networks: PathsNetwork[] = [
      { name: 'n0', bridge: 'bt-n0', gateway: '10.0.0.1' },
      { name: 'n1', bridge: 'bt-n1', gateway: '10.0.0.1' },
    ];
    const services: ServiceBlock[] = networks.flatMap((n) => Array.from({ length: int(0, 6) }, (_, i) => ({ network: n.name, name: `${n.name}s${i}`, block: `10.0.0.${16 * (i + 1)}/${int(28, 32)}` })));
    const paths: Path[] = [];
    for (let i = int(0, 30); i > 0 && services.length > 0; i--) {
      const to = services[int(0, services.length - 1)]!;
      const same = services.filter((s) => s.network === to.network);
      const p = int(0, 32);
      const a = r() < 0.5 ? ipToInt('10.0.0.0') + int(0, 255) : int(0, 2 ** 32 - 1);
      const from: Path['from'] = r() < 0.4 ? { service: same[int(0, same.length - 1)]!.name } : { cidr: `${intToIp(a - (a % 2 ** (32 - p)))}/${p}` };
      const lo = r() < 0.1 ? 65535 : int(1, 20);
      paths.push({ network: to.network, from, to: to.name, proto: r() < 0.5 ? 'tcp' : 'udp', ports: [lo, Math.min(65535, lo + int(0, 5))] });
    }
    const text = renderPathsRuleset({ services, paths }, networks);
    if (text.includes('paths_1')) layered++;
    const res = await sys.run('ip', ['netns', 'exec', BIG, 'nft', '-c', '-f', '-'], { input: text, allowFail: true });
    assert.equal(res.code, 0, `nft -c refused model ${run}: ${res.stderr}\n${text}`);
  }
  assert.ok(layered > 0, 'some models needed more than one path set');
});

/** A process in a namespace whose output is read line by line (each wait has a deadline against hanging). */
function run(ns: string, script: string): { proc: ChildProcessWithoutNullStreams; line: () => Promise<string> } {
  const proc = spawn('ip', ['netns', 'exec', ns, 'python3', '-u', '-c', script]);
  procs.push(proc);
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  createInterface({ input: proc.stdout }).on('line', (l) => (waiting.length ? waiting.shift()!(l) : lines.push(l)));
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const line = () =>
    lines.length
      ? Promise.resolve(lines.shift()!)
      : new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no line from ${script.slice(0, 40)}… within 30 s; stderr: ${err}`)), 30_000);
          waiting.push((l) => {
            clearTimeout(timer);
            resolve(l);
          });
        });
  return { proc, line };
}

const WEB: PathsNetwork[] = [{ name: 'web', bridge: 'bt-web', gateway: '10.231.0.1' }];
const SERVICES: ServiceBlock[] = [
  { network: 'web', name: 'front', block: '10.231.0.16/28' },
  { network: 'web', name: 'db', block: '10.231.0.32/29' },
];
const FRONT_DB: Path = { network: 'web', from: { service: 'front' }, to: 'db', proto: 'tcp', ports: [5432, 5432] };

/** One "machine" with the network's bridge; two "guests" on it: front (10.231.0.20) and db (10.231.0.33). Made once. */
let made1: Promise<void> | undefined;
const machine = () => (made1 ??= (async () => {
  for (const n of [MACHINE, A, B]) await netns(n);
  const inM = (...args: string[]) => inNs(MACHINE, args);
  assert.equal((await inM('cat', '/proc/sys/net/bridge/bridge-nf-call-iptables')).stdout.trim(), '1', 'br_netfilter passes bridged IPv4 to the inet hooks');
  await inM('ip', 'link', 'add', 'bt-web', 'type', 'bridge');
  await inM('ip', 'link', 'set', 'bt-web', 'up');
  for (const [ns, port, ip] of [[A, 'pa', '10.231.0.20'], [B, 'pb', '10.231.0.33']] as const) {
    await sys.run('ip', ['link', 'add', port, 'netns', MACHINE, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await inM('ip', 'link', 'set', port, 'master', 'bt-web', 'up');
    await inNs(ns, ['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await inNs(ns, ['ip', 'link', 'set', 'eth0', 'up']);
  }
})());

test('real packets over a bridge with br_netfilter: a SYN on a path gets its answer; one on no path never arrives', { skip }, async () => {
  await machine();
  await inNs(MACHINE, ['nft', '-f', '-'], renderPathsRuleset({ services: SERVICES, paths: [FRONT_DB] }, WEB));

  /** TCP segments db's stack has taken in (its namespace's own counter). */
  const dbInSegs = async () => {
    const snmp = (await inNs(B, ['cat', '/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Tcp:'));
    const [names, values] = snmp.map((l) => l.split(/\s+/));
    return Number(values![names!.indexOf('InSegs')]);
  };
  // Nothing listens on db: a SYN that arrives is answered with a RST (ECONNREFUSED, 111),
  // and that answer passes only as a reply (ct state established). One that drops gets nothing.
  const connect = async (port: number) =>
    (await inNs(A, ['python3', '-c', `import socket; s = socket.socket(); s.settimeout(3); print(s.connect_ex(("10.231.0.33", ${port})))`])).stdout.trim();

  const before1 = await dbInSegs();
  assert.equal(await connect(5432), '111', 'front -> db:5432 (a path): the SYN arrives and the RST comes back');
  assert.ok((await dbInSegs()) > before1, 'db took the SYN');

  const before2 = await dbInSegs();
  assert.notEqual(await connect(5433), '111', 'front -> db:5433 (no path): no answer');
  assert.equal(await dbInSegs(), before2, 'db never saw a segment on 5433');
});

test('an open connection survives a change that keeps its path, and is cut when its path goes', { skip }, async () => {
  await machine();
  const apply = (paths: Path[]) => inNs(MACHINE, ['nft', '-f', '-'], renderPathsRuleset({ services: SERVICES, paths }, WEB));
  await apply([FRONT_DB]);
  const server = run(B, "import socket\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 5432)); s.listen(1); print('listening')\nc, _ = s.accept()\nwhile True:\n  d = c.recv(100)\n  if not d: break\n  c.sendall(d)");
  assert.equal(await server.line(), 'listening');
  const client = run(A, "import socket, sys\nc = socket.create_connection(('10.231.0.33', 5432), timeout=5); print('connected')\nc.settimeout(3)\nfor _ in sys.stdin:\n  c.sendall(b'x')\n  try:\n    print('echo' if c.recv(100) else 'closed')\n  except socket.timeout:\n    print('no answer')");
  const send = async () => {
    client.proc.stdin.write('\n');
    return client.line();
  };
  assert.equal(await client.line(), 'connected');
  assert.equal(await send(), 'echo', 'on the path');
  await apply([FRONT_DB, { network: 'web', from: { cidr: '0.0.0.0/0' }, to: 'front', proto: 'tcp', ports: [80, 80] }]);
  assert.equal(await send(), 'echo', 'another path added: this connection flows on');
  await apply([{ network: 'web', from: { cidr: '0.0.0.0/0' }, to: 'front', proto: 'tcp', ports: [80, 80] }]);
  assert.equal(await send(), 'no answer', 'its path removed: cut at the next packet');
});
