// Paths for real (issue 14): real agents on namespace machines joined by the WireGuard mesh,
// QEMU guests of the tiny image under TCG, the control plane's API and CLI. Services `db`
// (busybox httpd on 5432 and 5433) and `web` (httpd on 80 and 81, and a loop that asks db on
// both ports once a second, printing each answer on its console) on two nodes; a third node,
// added afterwards, hosts nothing. web reaches db:5432 only while `path add web db 5432`
// stands, and 5433 never; `path add 0.0.0.0/0 web 80` publishes web:80 on every node, n3
// too (over the mesh), to "outside" machines on the underlay, and nothing else; a narrower
// CIDR admits only its own machine. One cluster, two VMs, for every case.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Service } from '../../src/api/schemas/service.ts';
import { NamespaceCluster } from './cluster-harness.ts';

let c: NamespaceCluster;
let lan: ReturnType<NamespaceCluster['addLanHost']>[] = [];
const t0 = Date.now();

const BLUEPRINT = (script: string, vars = '') => `network: { subnetwork_max_instance_count: 8 }
placement: { availability_zones: 1 }
count: 1
instance:
  public_ip: true
  memory: 192MB
  cpus: 1
image: { name: tiny }
initialization:
  - path: ${script}${vars}
`;

const DB = `#!/bin/sh
mkdir -p /www && echo "db answers" > /www/index.html
httpd -p 5432 -h /www
httpd -p 5433 -h /www
`;

// One probe round a second: the round's number, the port, and what db said (or fail). With
// nc: the tiny image's (Debian's static) busybox wget segfaults.
const WEB = `#!/bin/sh
mkdir -p /www && echo "web answers" > /www/index.html
httpd -p 80 -h /www
httpd -p 81 -h /www
(
n=0
while true; do
  n=$((n + 1))
  for p in 5432 5433; do
    r=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 4 nc -w 2 {{ Db }} $p 2>/dev/null | tail -1)
    if [ -n "$r" ]; then echo "probe $n $p ok $r"; else echo "probe $n $p fail"; fi
  done
  sleep 1
done
) &
`;

before(async () => {
  c = new NamespaceCluster();
  await c.startServer();
  await c.addNode('n1', 'east');
  await c.addNode('n2', 'west');
  const { buildTiny } = await import('../../src/daemon/tiny-image.ts');
  const t = await buildTiny(`${c.dir}/tiny`);
  const r = c.cli(['image', 'add', 'tiny', '--kernel', t.kernel, '--initrd', t.initrd, '--root-disk', t.rootDisk, '--cmdline', t.cmdline]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(c.cli(['network', 'create', 'lan', '--cidr', '10.40.0.0/24']).code, 0);
  mkdirSync(`${c.dir}/db`);
  mkdirSync(`${c.dir}/web`);
  writeFileSync(`${c.dir}/db/service.yml`, BLUEPRINT('db.sh'));
  writeFileSync(`${c.dir}/db/db.sh`, DB);
  writeFileSync(`${c.dir}/web/service.yml`, BLUEPRINT('web.sh', '\n    vars: { Db: { required: true } }'));
  writeFileSync(`${c.dir}/web/web.sh`, WEB);
  lan = [c.addLanHost(), c.addLanHost()];
});

after(async () => {
  if (process.env.BUTTER_TEST_DEBUG) console.error(c?.log);
  await c?.cleanup();
  console.log(`# paths host test: ${Math.round((Date.now() - t0) / 1000)} s in all`);
});

const show = (name: string) => c.json<Service>(['service', 'show', name]);
const logs = (vm: string) => c.cli(['vm', 'logs', vm]).stdout;
const ok = (args: string[]) => {
  const r = c.cli(args);
  assert.equal(r.code, 0, `butter ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

/** web's probe rounds so far: per round, each port's outcome. */
function probes(vm: string): { n: number; port: number; ok: boolean }[] {
  return [...logs(vm).matchAll(/probe (\d+) (\d+) (ok|fail)/g)].map((m) => ({ n: Number(m[1]), port: Number(m[2]), ok: m[3] === 'ok' }));
}
const lastRound = (vm: string) => Math.max(0, ...probes(vm).map((p) => p.n));

/** Waits for `rounds` probe rounds after now; returns them. */
async function roundsAfter(vm: string, rounds: number, what: string): Promise<{ n: number; port: number; ok: boolean }[]> {
  const from = lastRound(vm);
  await c.until(what, () => lastRound(vm) >= from + rounds, 120_000);
  return probes(vm).filter((p) => p.n > from);
}

/** An HTTP GET from a machine on the underlay (not a node): the body, or `refused` / `timeout`. */
function get(from: (typeof lan)[number], to: string, port: number): string {
  const script = [
    'import socket',
    `s = socket.create_connection(("${to}", ${port}), timeout=3)`,
    's.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n"); d = b""',
    'while True:',
    '  x = s.recv(4096)',
    '  if not x: break',
    '  d += x',
    'print(d.decode().split("\\r\\n\\r\\n", 1)[-1].strip())',
  ].join('\n');
  const r = from.run('python3', ['-c', script]);
  if (r.code === 0) return r.stdout.trim();
  return /ConnectionRefused/.test(r.stderr) ? 'refused' : /timed out|TimeoutError/.test(r.stderr) ? 'timeout' : `error: ${r.stderr.trim().split('\n').at(-1)}`;
}

const nodeIp = (name: string) => /inet (\S+)\//.exec(c.inNode(name, 'ip', ['-4', '-o', 'addr', 'show', 'eth0']).stdout)![1]!;
let webVm: string;
let dbIp: string;
let webNode: string;

test('db and web on two nodes: web reaches db:5432 only while the path stands, and db:5433 never', async () => {
  ok(['service', 'create', 'lan', 'db', '--blueprint', `${c.dir}/db/service.yml`, '--wait']);
  const db = show('db');
  dbIp = db.instances[0]!.ip!;
  ok(['service', 'create', 'lan', 'web', '--blueprint', `${c.dir}/web/service.yml`, '--var', `Db=${dbIp}`, '--wait']);
  const web = show('web');
  webVm = web.instances[0]!.name;
  webNode = web.instances[0]!.node!;
  assert.notEqual(webNode, db.instances[0]!.node, 'web and db on different nodes: web -> db crosses the mesh');

  const before = await roundsAfter(webVm, 3, 'three probe rounds with no path');
  assert.deepEqual(before.filter((p) => p.ok), [], 'no path: web reaches neither port of db');

  const added = lastRound(webVm);
  ok(['path', 'add', 'web', 'db', '5432']);
  const opened = await c.until('web reaches db:5432', () => probes(webVm).some((p) => p.port === 5432 && p.ok && p.n > added), 60_000);
  // A figure, not a bound: probes run once a second and reach us through the console (its shipping, a CLI poll).
  console.log(`# path add web db 5432 -> first answered probe seen: ${(opened / 1000).toFixed(1)} s`);
  const on = await roundsAfter(webVm, 3, 'three probe rounds with the path');
  assert.ok(on.filter((p) => p.port === 5432).every((p) => p.ok), `with the path every probe of 5432 answers: ${JSON.stringify(on)}`);
  assert.deepEqual(on.filter((p) => p.port === 5433 && p.ok), [], 'db:5433 stays closed');
  assert.match(logs(webVm), /probe \d+ 5432 ok db answers/);

  ok(['path', 'rm', 'web', 'db', '5432']);
  const rm = lastRound(webVm);
  await c.until('web cut off from db:5432 again', () => probes(webVm).some((p) => p.port === 5432 && !p.ok && p.n > rm), 60_000);
  const off = await roundsAfter(webVm, 3, 'three probe rounds after path rm');
  assert.deepEqual(off.filter((p) => p.ok), [], 'path removed: neither port answers');
});

test('an internet path publishes web:80 on every node, one hosting no instance too, from the underlay; nothing else is reachable', async () => {
  await c.addNode('n3', 'east');
  const [out] = lan;
  const nodes = ['n1', 'n2', 'n3'];
  for (const n of nodes) assert.match(get(out!, nodeIp(n), 80), /^(refused|timeout)$/, `before the path: nothing on ${n}:80`);
  ok(['path', 'add', '0.0.0.0/0', 'web', '80']);
  for (const n of nodes) {
    const ms = await c.until(`web:80 published on ${n}`, () => get(out!, nodeIp(n), 80) === 'web answers', 60_000);
    console.log(`# path add 0.0.0.0/0 web 80 -> web:80 answers on ${n}${n === webNode ? ' (hosts web)' : ''}: ${(ms / 1000).toFixed(1)} s after the previous node`);
  }
  assert.deepEqual(c.json<{ instances: unknown[] }>(['service', 'show', 'web']).instances.length, 1);
  for (const n of nodes) {
    assert.match(get(out!, nodeIp(n), 81), /^(refused|timeout)$/, `${n}:81 (web listens there, unpublished): not reached`);
    assert.match(get(out!, nodeIp(n), 5432), /^(refused|timeout)$/, `${n}:5432 (db's port): not reached`);
  }
  // The guests' own addresses are never routed in from the underlay, even by a LAN host that routes them to a node.
  assert.equal(out!.run('ip', ['route', 'add', '10.40.0.0/24', 'via', nodeIp(webNode)]).code, 0);
  assert.equal(get(out!, show('web').instances[0]!.ip!, 80), 'timeout', "web's own address from the underlay");
  assert.equal(get(out!, dbIp, 5432), 'timeout', "db's own address from the underlay");
  assert.equal(out!.run('ip', ['route', 'del', '10.40.0.0/24']).code, 0);
  ok(['path', 'rm', '0.0.0.0/0', 'web', '80']);
  for (const n of nodes) await c.until(`web:80 unpublished on ${n}`, () => /^(refused|timeout)$/.test(get(out!, nodeIp(n), 80)), 60_000);
});

test('a narrower CIDR publishes to its machine only', async () => {
  const [mine, other] = lan;
  const myIp = /inet (\S+)\//.exec(mine!.run('ip', ['-4', '-o', 'addr', 'show', 'eth0']).stdout)![1]!;
  ok(['path', 'add', `${myIp}/32`, 'web', '80']);
  for (const n of ['n1', 'n2', 'n3']) {
    await c.until(`web:80 on ${n} for ${myIp}`, () => get(mine!, nodeIp(n), 80) === 'web answers', 60_000);
    assert.match(get(other!, nodeIp(n), 80), /^(refused|timeout)$/, `${n}:80 from another machine of the underlay: not reached`);
  }
});
