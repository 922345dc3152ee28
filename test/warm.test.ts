/**
 * Warm images (issue 16) through the real control plane and real agents with the simulated
 * driver (a warm state is a small file; a template "boots" at once, or never says it is
 * ready for the image the test says): `image warm` goes warming -> ready, a VM of that size on
 * that node starts warm, any other VM cold with the reason; the refusals (unknown image,
 * warming twice, a node without room); a guest that never gets ready fails the warm state
 * with the reason and leaves nothing on the node; the template is never a VM.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Agent } from '../src/agent/agent.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import { Client } from '../src/sdk/client.ts';
import { rejects, startTestCloud, until, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
const agents: Agent[] = [];
const dirs: Record<string, string> = {};
const STOCK = Buffer.from('a stock cloud image that knows nothing of warm-ready'.repeat(50));
const stockSha = createHash('sha256').update(STOCK).digest('hex');

async function node(name: string): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), `butter-warm-${name}-`));
  dirs[name] = stateDir;
  const { token } = await cloud.admin.call('createNode', { body: { name } });
  const driver = new SimDriver({ stateDir, neverWarmReady: (t) => t.boot.kind === 'disk' && t.boot.disk.includes(stockSha) });
  const agent = new Agent({ client: new Client({ url: cloud.url, token }), node: name, stateDir, driver, accel: { accel: 'tcg', reason: 'simulated' }, heartbeatMs: 200, capacity: { cpus: 4, memoryBytes: 4 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 } });
  agents.push(agent);
  await agent.start();
}

before(async () => {
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'img');
  await uploadImage(cloud.admin, 'stock', STOCK);
  await node('n1');
  await node('n2');
  await until('both nodes ready', async () => ((await cloud.admin.call('listNodes', {})).items.filter((n) => n.state === 'ready').length === 2 ? true : undefined));
});
after(async () => {
  for (const a of agents) await a.stop();
  await cloud.close();
  for (const d of Object.values(dirs)) rmSync(d, { recursive: true, force: true });
});

const a = () => cloud.admin;
const warmOf = async (image: string, node: string) => (await a().call('getImage', { params: { name: image } })).warm.find((w) => w.node === node);
const warmDirs = (node: string) => (existsSync(join(dirs[node]!, 'warm')) ? readdirSync(join(dirs[node]!, 'warm')) : []);

test('image warm: warming -> ready on its node; a VM of that size there starts warm, others cold saying why', async () => {
  const img = await a().call('warmImage', { params: { name: 'img' }, body: { node: 'n1', memory: '256M' } });
  assert.deepEqual(img.warm.map((w) => [w.node, w.state, w.cpus, w.memoryMb]), [['n1', 'warming', 1, 256]]);
  const ready = await until('img warm on n1', async () => ((await warmOf('img', 'n1'))?.state === 'ready' ? await warmOf('img', 'n1') : undefined));
  assert.ok(ready!.readyAt && ready!.sizeBytes! > 0, JSON.stringify(ready));
  assert.equal(warmDirs('n1').length, 1, 'the warm state is on n1');
  assert.deepEqual(warmDirs('n2'), [], 'and only there');
  assert.deepEqual((await a().call('listVms', {})).items, [], 'the template is no VM');

  const warm = await a().call('createVm', { body: { name: 'w1', image: 'img', memory: '256M', node: 'n1' } });
  assert.equal(warm.start, 'warm');
  assert.equal(warm.startReason, null);
  await until('w1 running', async () => ((await a().call('getVm', { params: { name: 'w1' } })).state === 'running' ? true : undefined));
  assert.equal((await a().call('getVm', { params: { name: 'w1' } })).start, 'warm', 'the node started it warm');
  // Its identity carries its first NIC's lease (the guest sets it instead of asking DHCP): what dnsmasq would give it.
  const net = await a().call('getNetwork', { params: { name: 'default' } });
  const prefix = net.cidr.split('/')[1];
  const said = await until('w1 console', async () => (await a().call('vmLogs', { params: { name: 'w1' }, query: { offset: 0 } })).data.match(/started warm from \w+( at .*)?$/m)?.[1]);
  assert.equal(said, ` at ${warm.ip}/${prefix} via ${net.gateway}, mtu ${net.mtu}, domain default.internal`);

  const big = await a().call('createVm', { body: { name: 'c1', image: 'img', memory: '512M', node: 'n1' } });
  assert.equal(big.start, 'cold');
  assert.match(big.startReason ?? '', /different size: the warm state is 1 cpu, 256 MiB; this VM 1 cpu, 512 MiB/);
  const there = await a().call('createVm', { body: { name: 'c2', image: 'img', memory: '256M', node: 'n2' } });
  assert.equal(there.start, 'cold');
  assert.match(there.startReason ?? '', /no warm state on node n2/);
  // Without --node the scheduler prefers the node with the warm state.
  const anywhere = await a().call('createVm', { body: { name: 'w2', image: 'img', memory: '256M' } });
  assert.deepEqual([anywhere.node, anywhere.start], ['n1', 'warm']);
  const events = (await a().call('listEvents', { query: { resource: 'image', name: 'img' } })).items.filter((e) => e.action === 'warm').map((e) => e.message);
  assert.equal(events.length, 2, events.join(' | '));
  assert.match(events[1]!, /image img: warm on n1/);
});

test('refusals: an unknown image, warming twice, a node without room; nothing recorded', async () => {
  await rejects(a().call('warmImage', { params: { name: 'ghost' }, body: {} }), 404, 'name', /image ghost not found/);
  await rejects(a().call('warmImage', { params: { name: 'img' }, body: { node: 'n1' } }), 409, 'name', /already warm on node n1/);
  await rejects(a().call('warmImage', { params: { name: 'img' }, body: { node: 'n2', memory: '64G' } }), 422, 'node', /no node can run the template of img/);
  await rejects(a().call('warmImage', { params: { name: 'img' }, body: { node: 'nowhere' } }), 404, 'node');
  await rejects(a().call('warmImage', { params: { name: 'img' }, body: { memory: 'lots' } }), 400, 'memory');
  await rejects(a().call('warmImage', { params: { name: 'img' }, body: { cpus: 0 } }), 400, 'cpus');
  assert.deepEqual((await a().call('getImage', { params: { name: 'img' } })).warm.map((w) => w.node), ['n1'], 'no other warm state was recorded');
});

test('a guest that never says it is ready: the warm state fails with the reason, nothing is left on the node, VMs boot cold saying why', async () => {
  await a().call('warmImage', { params: { name: 'stock' }, body: { node: 'n2' } });
  const failed = await until('stock failed', async () => ((await warmOf('stock', 'n2'))?.state === 'failed' ? await warmOf('stock', 'n2') : undefined));
  assert.match(failed!.reason ?? '', /guest never signalled warm-ready within 60 s/);
  await until('nothing left on n2', async () => (warmDirs('n2').length === 0 ? true : undefined));
  const vm = await a().call('createVm', { body: { name: 's1', image: 'stock', node: 'n2' } });
  assert.equal(vm.start, 'cold');
  assert.match(vm.startReason ?? '', /warming failed on n2: guest never signalled warm-ready/);
  // A failed one may be tried again (and fails again, the same way).
  const again = await a().call('warmImage', { params: { name: 'stock' }, body: { node: 'n2' } });
  assert.equal(again.warm[0]!.state, 'warming');
  await until('stock failed again', async () => ((await warmOf('stock', 'n2'))?.state === 'failed' ? true : undefined));
});

test('unwarm: the warm state on one node goes, its node deletes the files, new VMs there boot cold; refusals name the field', async () => {
  await a().call('warmImage', { params: { name: 'img' }, body: { node: 'n2', memory: '256M' } });
  await until('img warm on n2', async () => ((await warmOf('img', 'n2'))?.state === 'ready' ? true : undefined));
  await until('its files on n2', async () => (warmDirs('n2').length === 1 ? true : undefined));
  const img = await a().call('unwarmImage', { params: { name: 'img', node: 'n2' } });
  assert.deepEqual(img.warm.map((w) => w.node), ['n1'], 'only n1 is warm now');
  await until('n2 deleted its warm state', async () => (warmDirs('n2').length === 0 ? true : undefined));
  assert.equal(warmDirs('n1').length, 1, "n1's is untouched");
  const cold = await a().call('createVm', { body: { name: 'c3', image: 'img', memory: '256M', node: 'n2' } });
  assert.deepEqual([cold.start, cold.startReason], ['cold', 'no warm state on node n2 (warm on n1)']);
  await a().call('deleteVm', { params: { name: 'c3' } });
  const events = (await a().call('listEvents', { query: { resource: 'image', name: 'img' } })).items.filter((e) => e.action === 'unwarm').map((e) => e.message);
  assert.deepEqual(events, ['image img: warm state on n2 removed (ready); new VMs of it there boot cold']);
  await rejects(a().call('unwarmImage', { params: { name: 'img', node: 'n2' } }), 404, 'node', /image img has no warm state on node n2/);
  await rejects(a().call('unwarmImage', { params: { name: 'ghost', node: 'n1' } }), 404, 'name', /image ghost not found/);
  await rejects(a().call('unwarmImage', { params: { name: 'img', node: 'N1!' } }), 400, 'params.node');
});

test('a node that stops reporting while it warms: the warm state fails saying so (its ready ones stay)', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'butter-warm-n3-'));
  dirs.n3 = stateDir;
  const { token } = await cloud.admin.call('createNode', { body: { name: 'n3' } });
  // Its agent reports once, then is gone: the template never ends there.
  const agent = new Agent({ client: new Client({ url: cloud.url, token }), node: 'n3', stateDir, driver: new SimDriver({ stateDir }), accel: { accel: 'tcg', reason: 'simulated' }, capacity: { cpus: 4, memoryBytes: 4 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 } });
  await agent.report();
  await a().call('warmImage', { params: { name: 'img' }, body: { node: 'n3', memory: '256M' } });
  assert.equal((await warmOf('img', 'n3'))?.state, 'warming');
  const failed = await until('the warm state on n3 failed', async () => ((await warmOf('img', 'n3'))?.state === 'failed' ? await warmOf('img', 'n3') : undefined), 30_000);
  assert.equal(failed!.reason, 'node n3 stopped reporting while warming');
  assert.equal((await warmOf('img', 'n1'))?.state, 'ready', "another node's ready state is not touched");
});

test('removing the image removes its warm states, and the node deletes the files', async () => {
  for (const name of ['w1', 'w2', 'c1', 'c2']) await a().call('deleteVm', { params: { name } });
  await until('VMs of img gone', async () => ((await a().call('listVms', {})).items.some((v) => v.image === 'img') ? undefined : true));
  await a().call('deleteImage', { params: { name: 'img' } });
  await until('n1 deleted its warm state', async () => (warmDirs('n1').length === 0 ? true : undefined));
});
