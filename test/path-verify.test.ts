// `POST /v1/networks/{name}/verify` over the real API with real agents (simulated driver):
// the control plane plans the probes, each node gets its batch in its desired-state watch and
// posts its results back, and the answer is the report. The probe itself is a fake here (a
// "data plane" that admits what the test says); test/host/path-verify.test.ts sends real
// packets through real rules.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import type { ProbeBatch } from '../src/api/schemas/verify.ts';
import { createControlPlane, type ControlPlane } from '../src/server/control-plane.ts';
import { Client } from '../src/sdk/client.ts';
import { rejects, until, uploadImage } from './helpers.ts';

let cp: ControlPlane;
let admin: Client;
let url: string;
let dir: string;
const agents: Agent[] = [];
const clients = new Map<string, Client>();
/** What each node's fake data plane was asked, and how it answers. */
const asked: { node: string; bridge: string; probes: ProbeBatch['probes'] }[] = [];
let dataPlane: (node: string, p: ProbeBatch['probes'][number]) => boolean = () => false;
/** Per node: its prober fails, or answers only once released (after the deadline). */
const trouble = new Map<string, 'fail' | 'hang'>();
let release = () => {};
const released = new Promise<void>((resolve) => (release = resolve));

let webBlock = '';
let dbIps: string[] = [];
function isWebToDb(p: { src: string; dst: string }): boolean {
  return inBlock(p.src, webBlock) && dbIps.includes(p.dst);
}
function inBlock(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const n = (a: string) => a.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  return Math.floor(n(ip) / size) === Math.floor(n(base!) / size);
}

const blueprint = `
network: { subnetwork_max_instance_count: 4 }
placement: { availability_zones: 1 }
instance: { memory: 256M, cpus: 1 }
image: { name: img }
`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'butter-path-verify-'));
  cp = createControlPlane({ dataDir: join(dir, 'cp') });
  url = await cp.listen('127.0.0.1', 0);
  admin = new Client({ url, token: cp.adminToken! });
  await uploadImage(admin, 'img');
  for (const name of ['n1', 'n2']) {
    const { token } = await admin.call('createNode', { body: { name } });
    const client = new Client({ url, token });
    clients.set(name, client);
    const stateDir = join(dir, name);
    const probe = async (bridge: string, probes: ProbeBatch['probes']) => {
      asked.push({ node: name, bridge, probes });
      if (trouble.get(name) === 'fail') throw new Error('nft: Operation not permitted');
      if (trouble.get(name) === 'hang') await released;
      return Object.fromEntries(probes.map((p) => [p.id, dataPlane(name, p)]));
    };
    const agent = new Agent({ client, node: name, stateDir, driver: new SimDriver({ stateDir }), accel: { accel: 'tcg', reason: 'simulated' }, heartbeatMs: 200, capacity: { cpus: 8, memoryBytes: 16 * 1024 ** 3, diskBytes: 200 * 1024 ** 3 }, probe });
    await agent.start();
    agents.push(agent);
  }
  for (const [name, count] of [['web', 2], ['db', 1]] as const) {
    await admin.call('createService', { body: { network: 'default', name, blueprint, files: {}, count } });
  }
  await until('every instance running', async () => {
    const all = await Promise.all(['web', 'db'].map((name) => admin.call('getService', { params: { name } })));
    return all.every((s) => s.instances.length === s.count && s.instances.every((i) => i.state === 'running')) ? all : undefined;
  });
  cp.services.paths.add('admin', { from: 'web', to: 'db', ports: '5432' });
  webBlock = (await admin.call('getService', { params: { name: 'web' } })).block;
  dbIps = (await admin.call('getService', { params: { name: 'db' } })).instances.map((i) => i.ip!);
});

after(async () => {
  release();
  for (const a of agents) await a.stop();
  await cp?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the nodes probe what the plan says; a data plane that does what the paths say is reported so', async () => {
  dataPlane = (_node, p) => p.proto === 'tcp' && p.port === 5432 && isWebToDb(p);
  asked.length = 0;
  const report = await admin.call('verifyNetwork', { params: { name: 'default' }, query: { timeout: 30 } });
  assert.deepEqual(report.disagreements, []);
  assert.deepEqual(report.unanswered, []);
  assert.equal(report.ok, true);
  assert.ok(report.probed > 10, `${report.probed} probes`);
  // Each node got its own batch, on the network's bridge, with the destinations it hosts.
  const instances = (await admin.call('listVms', {})).items.filter((v) => v.service);
  for (const a of asked) {
    assert.equal(a.bridge, 'bt-default');
    for (const p of a.probes) assert.equal(instances.find((v) => v.ip === p.dst)?.node, a.node, `${p.dst} is on ${a.node}`);
  }
  assert.equal(asked.reduce((n, a) => n + a.probes.length, 0), report.probed);
});


test('a data plane that admits too much, or too little, is reported probe by probe', async () => {
  // Leaks db -> db:5432 and drops web -> db:5432.
  dataPlane = (_node, p) => p.proto === 'tcp' && p.port === 5432 && !isWebToDb(p);
  const report = await admin.call('verifyNetwork', { params: { name: 'default' }, query: { timeout: 30 } });
  assert.equal(report.ok, false);
  const lines = report.disagreements.map((d) => `${d.from}->${d.to}:${d.port} expected ${d.expected}, ${d.observed}`);
  // (5432 is probed only toward db: no path to web names it.)
  assert.deepEqual(lines.sort(), ['db->db:5432/tcp expected denied, admitted', 'web->db:5432/tcp expected allowed, dropped']);
});

test('results: only the node a job waits for, once; nodes may not post for each other; viewers may not verify', async () => {
  const n1 = clients.get('n1')!;
  await rejects(n1.call('nodeProbeResults', { params: { name: 'n1' }, body: { job: '0123456789abcdef', network: 'default', admitted: {} } }), 404, 'job');
  await rejects(n1.call('nodeProbeResults', { params: { name: 'n2' }, body: { job: '0123456789abcdef', network: 'default', admitted: {} } }), 403);
  await rejects(n1.call('verifyNetwork', { params: { name: 'default' }, query: {} }), 403);
  await rejects(admin.call('verifyNetwork', { params: { name: 'nope' }, query: {} }), 404, 'name');
  await rejects(admin.call('verifyNetwork', { params: { name: 'default' }, query: { timeout: 0 } }), 400, 'query.timeout');
});

test('a node that cannot probe, or does not answer in time, is reported unanswered, not agreed', async () => {
  trouble.set('n1', 'fail');
  trouble.set('n2', 'hang');
  const report = await admin.call('verifyNetwork', { params: { name: 'default' }, query: { timeout: 2 } });
  assert.equal(report.ok, false);
  assert.equal(report.probed, 0);
  const why = Object.fromEntries(report.unanswered.map((u) => [u.node, u.reason]));
  assert.deepEqual(Object.keys(why).sort(), ['n1', 'n2']);
  assert.match(why.n1!, /Operation not permitted/);
  assert.equal(why.n2, 'no answer before the deadline');
  release();
});
