// Many nodes, one pool: placement constraints, policies, overcommit, cordon, drain/evacuate,
// removal, and that concurrent creates never over-fill a node — over real HTTP.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ButterError, type Client } from '../src/sdk/client.ts';
import { GiB } from '../src/core/units.ts';
import { fakeNode, startTestCloud, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
const nodes: Record<string, Client> = {};

before(async () => {
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'img');
  for (const [name, zone] of [['a1', 'east'], ['a2', 'east'], ['b1', 'west']] as const) {
    nodes[name] = await fakeNode(cloud, name, 4);
    await cloud.admin.call('updateNode', { params: { name }, body: { zone, reserved: { memory: '0G' } } });
  }
});
after(async () => {
  await cloud?.close();
});

async function refused(p: Promise<unknown>, status: number, re?: RegExp): Promise<ButterError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ButterError, String(e));
    assert.equal(e.status, status, e.message);
    if (re) assert.match(e.message, re);
    return e;
  }
  assert.fail('expected a refusal');
}

const create = (name: string, o: Record<string, unknown> = {}) => cloud.admin.call('createVm', { body: { name, image: 'img', memory: '1G', disk: '1G', ...o } });
const rmAll = async () => {
  for (const vm of (await cloud.admin.call('listVms', {})).items) {
    await cloud.admin.call('deleteVm', { params: { name: vm.name } });
    cloud.cp.services.nodes.report(vm.node!, { capacity: { cpus: 4, memoryBytes: 4 * GiB, diskBytes: 100 * GiB }, accel: 'tcg', driver: 'sim', vms: [] });
  }
};

test('node list shows capacity, allocatable, allocated, free and VM count', async () => {
  await create('one', { node: 'a1' });
  const n = await cloud.admin.call('getNode', { params: { name: 'a1' } });
  assert.deepEqual(n.capacity, { cpus: 4, memoryBytes: 4 * GiB, diskBytes: 100 * GiB });
  assert.deepEqual(n.allocatable, { cpus: 16, memoryBytes: 4 * GiB, diskBytes: 100 * GiB }, 'cpu overcommit 4.0 by default');
  assert.deepEqual(n.allocated, { cpus: 1, memoryBytes: GiB, diskBytes: GiB });
  assert.deepEqual(n.free, { cpus: 15, memoryBytes: 3 * GiB, diskBytes: 99 * GiB });
  assert.equal(n.vmCount, 1);
  assert.equal(n.zone, 'east');
  await rmAll();
});

test('spread (default) and binpack, --zone, labels and anti-affinity', async () => {
  const spread = [await create('s1'), await create('s2'), await create('s3')].map((v) => v.node);
  assert.equal(new Set(spread).size, 3, `spread over all nodes: ${spread}`);
  await rmAll();
  const packed = [await create('p1', { policy: 'binpack' }), await create('p2', { policy: 'binpack' }), await create('p3', { policy: 'binpack' })].map((v) => v.node);
  assert.equal(new Set(packed).size, 1, `binpack fills one node first: ${packed}`);
  await rmAll();
  assert.equal((await create('w', { zone: 'west' })).node, 'b1');
  await cloud.admin.call('updateNode', { params: { name: 'a2' }, body: { labels: { disk: 'ssd' } } });
  assert.equal((await create('l', { labels: { disk: 'ssd' } })).node, 'a2');
  await cloud.admin.call('updateNode', { params: { name: 'a2' }, body: { labels: { disk: null } } });
  await refused(create('l2', { labels: { disk: 'ssd' } }), 422, /a2: label disk=ssd missing/);
  await rmAll();
  // Anti-affinity even under binpack: one per node, and across zones first.
  const web = [];
  for (let i = 0; i < 3; i++) web.push((await create(`web-${i}`, { spreadKey: 'web', policy: 'binpack' })).node);
  assert.equal(new Set(web).size, 3);
  assert.ok(web.slice(0, 2).includes('b1'), `the first two land in different zones: ${web}`);
  await rmAll();
});

test('overcommit ratios per group; --force places beyond them with a warning', async () => {
  await cloud.admin.call('setGroup', { params: { name: 'default' }, body: { memoryRatio: 0.5 } });
  await refused(create('big', { memory: '3G' }), 422, /a1: memory 2G free < 3G; a2: memory 2G free < 3G; b1: memory 2G free < 3G/);
  const forced = await create('big', { memory: '3G', force: true });
  assert.match(forced.warning ?? '', /beyond overcommit with --force/);
  const ev = await cloud.admin.call('listEvents', { query: { limit: 1000 } });
  assert.ok(ev.items.some((e) => e.name === 'big' && /warning/.test(e.message)));
  await refused(create('huge', { memory: '5G', force: true }), 422);
  await cloud.admin.call('setGroup', { params: { name: 'default' }, body: { memoryRatio: 1 } });
  await rmAll();
});

test('cordon keeps new VMs off; drain moves them; remove is refused while VMs remain', async () => {
  const v = await create('mover', { node: 'a1' });
  await cloud.admin.call('cordonNode', { params: { name: 'a1' } });
  for (let i = 0; i < 3; i++) assert.notEqual((await create(`c${i}`)).node, 'a1');
  await refused(cloud.admin.call('deleteNode', { params: { name: 'a1' } }), 409, /drain or evacuate/);
  await refused(cloud.admin.call('drainNode', { params: { name: 'a1' }, body: { confirm: false } as never }), 400, /local disk data is lost/);
  const drained = await cloud.admin.call('drainNode', { params: { name: 'a1' }, body: { confirm: true } });
  assert.deepEqual(drained.moved.map((m) => m.vm), ['mover']);
  const moved = await cloud.admin.call('getVm', { params: { name: 'mover' } });
  assert.notEqual(moved.node, 'a1');
  assert.equal(moved.ip, v.ip, 'same address after the move');
  const old = await nodes.a1!.call('nodeDesired', { params: { name: 'a1' } });
  assert.ok(!('unchanged' in old));
  assert.deepEqual(old.vms, [], 'the old node is told to drop it');
  await cloud.admin.call('deleteNode', { params: { name: 'a1' } });
  await refused(nodes.a1!.call('nodeDesired', { params: { name: 'a1' } }), 401, /unknown token/);
  await rmAll();
});

test('unknown node/group/zone, impossible sizes, bad updates: refused, nothing changed', async () => {
  const rev = cloud.cp.services.store.revision();
  await refused(create('x', { node: 'ghost' }), 404, /node ghost/);
  await refused(create('x', { group: 'ghost' }), 404, /group ghost/);
  await refused(create('x', { zone: 'mars' }), 404, /zone mars/);
  await refused(create('x', { memory: '1T' }), 422, /no node can take/);
  await refused(cloud.admin.call('updateNode', { params: { name: 'a2' }, body: { labels: { 'Bad Key': 'v' } } }), 400);
  await refused(cloud.admin.call('setGroup', { params: { name: 'default' }, body: { cpuRatio: 0 } }), 400);
  await refused(nodes.a2!.call('cordonNode', { params: { name: 'a2' } }), 403);
  await refused(nodes.a2!.call('nodeReport', { params: { name: 'b1' }, body: { capacity: { cpus: 1, memoryBytes: 1, diskBytes: 1 }, accel: 'tcg', driver: 'sim', vms: [] } }), 403);
  assert.equal(cloud.cp.services.store.revision(), rev, 'nothing was written');
});

test('concurrent creates never over-fill a node', async () => {
  // b1 has 4G; 12 concurrent 1G creates pinned to it: exactly 4 succeed.
  const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => create(`race-${i}`, { node: 'b1' })));
  const ok = results.filter((r) => r.status === 'fulfilled').length;
  assert.equal(ok, 4);
  const n = await cloud.admin.call('getNode', { params: { name: 'b1' } });
  assert.ok(n.allocated.memoryBytes <= n.allocatable.memoryBytes);
  await rmAll();
});
