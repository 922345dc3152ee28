/**
 * Data disks (VmCreate.disks) through the real control plane: the API shows them with the
 * guest's device names, the node's desired state carries them, scheduling counts them in the
 * node's disk, and bad input is refused naming the field with nothing made.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '../src/sdk/client.ts';
import { fakeNode, rejects, startTestCloud, uploadImage, type TestCloud } from './helpers.ts';

const M = 1024 ** 2;
const G = 1024 ** 3;

let cloud: TestCloud;
let a: Client;
before(async () => {
  cloud = await startTestCloud();
  a = await fakeNode(cloud, 'a'); // 100G of disk
  await uploadImage(cloud.admin, 'img');
});
after(async () => {
  await cloud.close();
});

const count = () => (cloud.cp.services.store.db.prepare('SELECT COUNT(*) AS n FROM vms').get() as { n: number }).n;
/** Gone at once, as if its node had confirmed the delete (these nodes run no agent). */
const rm = (name: string) => {
  cloud.cp.services.store.db.prepare('DELETE FROM vms WHERE name = ?').run(name);
  cloud.cp.services.store.scheduleGen++;
};

test('a VM created with data disks shows them (index, size, guest device) and its node is told to make them', async () => {
  const vm = await cloud.admin.call('createVm', { body: { name: 'db', image: 'img', disk: '2G', disks: [{ size: '16M' }, { size: '1G' }] } });
  const want = [
    { index: 1, sizeBytes: 16 * M, device: 'vdb' },
    { index: 2, sizeBytes: G, device: 'vdc' },
  ];
  assert.deepEqual(vm.disks, want);
  assert.equal(vm.diskBytes, 2 * G, 'diskBytes stays the root disk');
  assert.deepEqual((await cloud.admin.call('getVm', { params: { name: 'db' } })).disks, want);
  assert.deepEqual((await cloud.admin.call('listVms', {})).items.find((v) => v.name === 'db')?.disks, want);
  const desired = await a.call('nodeDesired', { params: { name: 'a' } });
  assert.ok(!('unchanged' in desired));
  assert.deepEqual(desired.vms.find((v) => v.name === 'db')?.disks, [
    { index: 1, sizeBytes: 16 * M },
    { index: 2, sizeBytes: G },
  ]);
  const ev = await cloud.admin.call('listEvents', { query: { limit: 1000 } });
  assert.ok(ev.items.some((e) => e.name === 'db' && e.action === 'create' && /\(1 cpu, 512M, data disks 16M, 1G\)/.test(e.message)), JSON.stringify(ev.items.filter((e) => e.name === 'db')));
  // A VM without data disks has none, in the API and in the desired state alike.
  const plain = await cloud.admin.call('createVm', { body: { name: 'plain', image: 'img' } });
  assert.deepEqual(plain.disks, []);
  const d2 = await a.call('nodeDesired', { params: { name: 'a' } });
  assert.ok(!('unchanged' in d2));
  assert.deepEqual(d2.vms.find((v) => v.name === 'plain')?.disks, []);
  rm('db');
  rm('plain');
});

test('bad data disks are refused naming the field; a node without room for root + data says disk; nothing is made', async () => {
  const n0 = count();
  const rev = cloud.cp.services.store.revision();
  await rejects(cloud.admin.call('createVm', { body: { name: 'x', image: 'img', disks: [{ size: '1G' }, { size: 'lots' }] } }), 400, 'disks[1].size', /must be a size/);
  await rejects(cloud.admin.call('createVm', { body: { name: 'x', image: 'img', disks: [{ size: '512K' }] } }), 400, 'disks[0].size', /at least 1M/);
  await rejects(cloud.admin.call('createVm', { body: { name: 'x', image: 'img', disks: Array.from({ length: 9 }, () => ({ size: '1G' })) } }), 400, 'disks', /at most 8/);
  // 2G root + 99G data on a node of 100G: each fits alone, together they do not.
  const e = await rejects(cloud.admin.call('createVm', { body: { name: 'x', image: 'img', disk: '2G', disks: [{ size: '50G' }, { size: '49G' }] } }), 422);
  assert.equal(e.code, 'no_capacity');
  assert.match(e.message, /101G disk/);
  assert.match(e.message, /a: disk 100G free < 101G/);
  assert.equal(count(), n0);
  assert.equal(cloud.cp.services.store.revision(), rev, 'no write at all');
});

test('scheduling counts data disks in the node\'s disk: in the cached view, after a rebuild, and on resize', async () => {
  await cloud.admin.call('createVm', { body: { name: 'big', image: 'img', disk: '2G', disks: [{ size: '60G' }] } });
  const node = await cloud.admin.call('getNode', { params: { name: 'a' } });
  assert.equal(node.allocated.diskBytes, 62 * G);
  // 38G left: 2G + 40G does not fit, from the cached view...
  await rejects(cloud.admin.call('createVm', { body: { name: 'more', image: 'img', disk: '2G', disks: [{ size: '40G' }] } }), 422, undefined, /disk 38G free < 42G/);
  // ...nor from one rebuilt from the database.
  cloud.cp.services.store.scheduleGen++;
  await rejects(cloud.admin.call('createVm', { body: { name: 'more', image: 'img', disk: '2G', disks: [{ size: '40G' }] } }), 422, undefined, /disk 38G free < 42G/);
  // A node pinned by name is re-checked the same way.
  await rejects(cloud.admin.call('createVm', { body: { name: 'more', image: 'img', node: 'a', disk: '2G', disks: [{ size: '40G' }] } }), 422, 'node');
  const fits = await cloud.admin.call('createVm', { body: { name: 'more', image: 'img', disk: '2G', disks: [{ size: '36G' }] } });
  assert.equal(fits.node, 'a');
  // Full now (100G of 100G): a resize of a VM with data disks counts them once, not twice.
  const resized = await cloud.admin.call('resizeVm', { params: { name: 'big' }, body: { cpus: 2 } });
  assert.deepEqual(resized.pending?.cpus, 2);
  rm('big');
  rm('more');
});

test('a drained VM is recreated elsewhere with its data disks, empty, and the event says so', async () => {
  const b = await fakeNode(cloud, 'b');
  await cloud.admin.call('createVm', { body: { name: 'mover', image: 'img', node: 'a', disks: [{ size: '8G' }] } });
  const drained = await cloud.admin.call('drainNode', { params: { name: 'a' }, body: { confirm: true } });
  assert.deepEqual(drained.moved, [{ vm: 'mover', from: 'a', to: 'b' }]);
  const moved = await cloud.admin.call('getVm', { params: { name: 'mover' } });
  assert.deepEqual(moved.disks, [{ index: 1, sizeBytes: 8 * G, device: 'vdb' }]);
  const desired = await b.call('nodeDesired', { params: { name: 'b' } });
  assert.ok(!('unchanged' in desired));
  assert.deepEqual(desired.vms.find((v) => v.name === 'mover')?.disks, [{ index: 1, sizeBytes: 8 * G }]);
  assert.equal((await cloud.admin.call('getNode', { params: { name: 'b' } })).allocated.diskBytes, 10 * G);
  const ev = await cloud.admin.call('listEvents', { query: { limit: 1000 } });
  assert.ok(ev.items.some((e) => e.name === 'mover' && /1 data disk \(vdb\) recreated empty/.test(e.message)), JSON.stringify(ev.items.filter((e) => e.name === 'mover')));
});
