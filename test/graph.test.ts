// `GET /v1/graph` and the SDK's `graph()` against a real control plane with a real agent on
// the simulated driver: services with their instances running/total (one service whose
// instances fail to start), paths from a service, the internet and a narrower CIDR, as JSON,
// as DOT text and as SVG drawn by the real Graphviz `dot`; one network; bad input; a viewer
// reading it; a control plane without `dot` answering 406 and still serving DOT and JSON.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from '../src/agent/agent.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import type { PathCreate } from '../src/api/schemas/path.ts';
import { Butter } from '../src/sdk/connect.ts';
import { Client } from '../src/sdk/client.ts';
import { rejects, simAgent, startTestCloud, until, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let butter: Butter;
let agent: Agent;
let stateDir: string;
let driverDir: string;

// Instances asking for 300M fail to start on the simulated driver: 0 of them run.
const blueprint = (memory = '256M', publicIp = false) => `placement: { availability_zones: 1 }
instance: { memory: ${memory}, cpus: 1, public_ip: ${publicIp} }
image: { name: img }
`;

const addPath = (body: PathCreate) => cloud.admin.call('createPath', { body });

before(async () => {
  cloud = await startTestCloud();
  butter = new Butter({ url: cloud.url, token: cloud.cp.adminToken! });
  await uploadImage(cloud.admin, 'img');
  driverDir = mkdtempSync(join(tmpdir(), 'butter-graph-driver-'));
  const a = await simAgent(cloud, 'n1', {
    driver: new SimDriver({ stateDir: driverDir, failStart: (spec) => (spec.memoryMiB === 300 ? 'simulated boot failure' : undefined) }),
    capacity: { cpus: 16, memoryBytes: 32 * 1024 ** 3, diskBytes: 200 * 1024 ** 3 },
  });
  agent = a.agent;
  stateDir = a.stateDir;
  await agent.start();
  await butter.network.create('dev', { cidr: '10.20.0.0/16' });
  await butter.network.create('lab', { cidr: '10.30.0.0/16' });
  await butter.service.create('dev', 'web', { blueprint: { text: blueprint('256M', true) }, count: 2, wait: true });
  await butter.service.create('dev', 'db', { blueprint: { text: blueprint() }, count: 1, wait: true });
  await butter.service.create('lab', 'broken', { blueprint: { text: blueprint('300M') }, count: 2 });
  await until('broken instances failed', async () => ((await butter.service.get('broken'))!.instances.every((i) => i.state === 'error') ? true : undefined));
  await addPath({ from: 'web', to: 'db', ports: '5432' });
  await addPath({ from: '0.0.0.0/0', to: 'web', ports: '80' });
  await addPath({ from: '192.168.1.0/24', to: 'web', ports: '8000-8100/udp' });
  await addPath({ from: 'broken', to: 'broken', ports: '53/udp' });
});

after(async () => {
  await agent?.stop();
  await cloud?.close();
  for (const d of [stateDir, driverDir]) if (d) rmSync(d, { recursive: true, force: true });
});

const get = (query: string, token = cloud.cp.adminToken!) => fetch(`${cloud.url}/v1/graph${query}`, { headers: { authorization: `Bearer ${token}` } });

test('JSON: a cluster per network, services with instances running/total, the internet and a CIDR outside, an edge per path', async () => {
  const g = await cloud.admin.call('getGraph', {});
  assert.deepEqual(
    g.clusters.map((c) => [c.network, c.cidr, c.nodes]),
    [
      ['default', '10.200.0.0/16', []],
      ['dev', '10.20.0.0/16', ['service:db', 'service:web']],
      ['lab', '10.30.0.0/16', ['service:broken']],
    ],
  );
  assert.deepEqual(
    g.nodes.map((n) => [n.id, n.kind, n.network, n.instances]),
    [
      ['internet', 'internet', null, null],
      ['cidr:192.168.1.0/24', 'cidr', null, null],
      ['service:broken', 'service', 'lab', { running: 0, total: 2 }],
      ['service:db', 'service', 'dev', { running: 1, total: 1 }],
      ['service:web', 'service', 'dev', { running: 2, total: 2 }],
    ],
  );
  assert.deepEqual(
    g.edges.map((e) => `${e.network}: ${e.from} -> ${e.to} ${e.label}`),
    ['dev: internet -> service:web tcp:80', 'dev: cidr:192.168.1.0/24 -> service:web udp:8000-8100', 'dev: service:web -> service:db tcp:5432', 'lab: service:broken -> service:broken udp:53'],
  );
  assert.equal(typeof g.revision, 'number');
});

test('DOT text, of its own media type, with every edge labelled proto:port', async () => {
  const res = await get('?format=dot');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/vnd\.graphviz/);
  const dot = await res.text();
  assert.match(dot, /^digraph butter \{/);
  for (const line of [
    'subgraph "cluster_dev" {',
    '"service:web" [label="web\\n2/2 running", shape=box, style=rounded];',
    '"service:broken" [label="broken\\n0/2 running", shape=box, style=rounded];',
    '"internet" -> "service:web" [label="tcp:80"];',
    '"cidr:192.168.1.0/24" -> "service:web" [label="udp:8000-8100"];',
    '"service:web" -> "service:db" [label="tcp:5432"];',
  ])
    assert.ok(dot.includes(line), `${line}\nin\n${dot}`);
  assert.equal(await butter.graph(), dot, "the SDK's graph() is the DOT text, as the original's");
});

test('SVG drawn by the real Graphviz dot: every node and edge label in the picture', async () => {
  const res = await get('?format=svg');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^image\/svg\+xml/);
  const svg = await res.text();
  assert.match(svg, /<svg[\s>]/);
  assert.match(svg, /<\/svg>\s*$/);
  for (const title of ['cluster_dev', 'cluster_lab', 'service:web', 'service:db', 'internet', 'internet&#45;&gt;service:web']) assert.ok(svg.includes(`<title>${title}</title>`), title);
  for (const text of ['2/2 running', '0/2 running', 'tcp:80', 'tcp:5432', 'udp:8000&#45;8100', 'dev (10.20.0.0/16)']) assert.ok(svg.includes(`>${text}</text>`), text);
  assert.equal(await butter.graph({ format: 'svg' }), svg);
});

test('one network: its cluster, services and paths, and only the sources they admit', async () => {
  const g = await butter.graph({ network: 'lab', format: 'json' });
  assert.deepEqual(
    g.clusters.map((c) => c.network),
    ['lab'],
  );
  assert.deepEqual(
    g.nodes.map((n) => n.id),
    ['service:broken'],
  );
  assert.deepEqual(
    g.edges.map((e) => e.label),
    ['udp:53'],
  );
  const dot = await butter.graph({ network: 'dev' });
  assert.ok(!dot.includes('broken') && !dot.includes('cluster_lab'), dot);
});

test('bad input names its field: an unknown network (404), an unknown format (400)', async () => {
  await rejects(cloud.admin.call('getGraph', { query: { network: 'nope' } }), 404, 'network', /no network nope/);
  await rejects(cloud.admin.call('getGraph', { query: { format: 'png' as never } }), 400, 'query.format');
  await rejects(cloud.admin.call('getGraph', { query: { network: 'Not A Name' } }), 400, 'query.network');
});

test('a viewer may read the graph in every format', async () => {
  const { secret: token } = await cloud.admin.call('createToken', { body: { role: 'viewer', description: 'graph viewer' } });
  const viewer = new Client({ url: cloud.url, token });
  assert.equal((await viewer.call('getGraph', {})).edges.length, 4);
  for (const format of ['dot', 'svg']) assert.equal((await get(`?format=${format}`, token)).status, 200, format);
});

test('a deleted service leaves the graph with its paths', async () => {
  await butter.service.destroy('db');
  const g = await until('db gone', async () => {
    const x = await butter.graph({ format: 'json', network: 'dev' });
    return x.nodes.some((n) => n.id === 'service:db') ? undefined : x;
  });
  assert.deepEqual(
    g.edges.map((e) => `${e.from} -> ${e.to}`),
    ['internet -> service:web', 'cidr:192.168.1.0/24 -> service:web'],
  );
});

test('without Graphviz on the control plane: format svg is 406 not_acceptable naming the package; dot and json still answer', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-graph-nodot-'));
  const { createControlPlane } = await import('../src/server/control-plane.ts');
  // A real lookup of a program that is not there (ENOENT), as on a host without the package.
  const cp = createControlPlane({ dataDir: dir, graphviz: { command: join(dir, 'no-such-dot') } });
  try {
    const url = await cp.listen('127.0.0.1', 0);
    const admin = new Butter({ url, token: cp.adminToken! });
    const e = await rejects(admin.graph({ format: 'svg' }), 406, 'format', /needs Graphviz's `.*no-such-dot`.*apt-get install graphviz/);
    assert.equal(e.code, 'not_acceptable');
    assert.match(await admin.graph(), /subgraph "cluster_default"/);
    assert.equal((await admin.graph({ format: 'json' })).clusters.length, 1);
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
