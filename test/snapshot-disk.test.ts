/**
 * Snapshot files take their node's disk: the scheduler counts the sizes their node reported
 * (issue 16, carried item), so a node full of snapshots is not handed more disks.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeNode, rejects, startTestCloud, uploadImage, type TestCloud } from './helpers.ts';
import type { Client } from '../src/sdk/client.ts';

let cloud: TestCloud;
let node: Client;
before(async () => {
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'img');
  node = await fakeNode(cloud, 'd1');
});
after(async () => {
  await cloud.close();
});

const GiB = 1024 ** 3;

test("a node's used disk counts its snapshots' reported sizes, and placement refuses what no longer fits", async () => {
  const vm = await cloud.admin.call('createVm', { body: { name: 'v', image: 'img', disk: '10G' } });
  const before = (await cloud.admin.call('getNode', { params: { name: 'd1' } })).allocated.diskBytes;
  const report = (snapshots: { id: string; state: 'ready'; sizeBytes: number }[]) =>
    node.call('nodeReport', { params: { name: 'd1' }, body: { capacity: { cpus: 4, memoryBytes: 8 * GiB, diskBytes: 100 * GiB }, accel: 'tcg', driver: 'sim', vms: [{ id: vm.id, state: 'running', snapshots }] } });
  // Its initial snapshot (a pending one, on older control planes, until the node says so): an empty file.
  const [initial] = (await cloud.admin.call('listSnapshots', { params: { name: 'v' } })).items;
  await report([{ id: initial!.id, state: 'ready', sizeBytes: 0 }]);
  const big = await cloud.admin.call('createSnapshot', { params: { name: 'v' }, body: { name: 'big' } });
  // The node reports it taken, its file 60 GiB (of the node's 100).
  await report([{ id: big.id, state: 'ready', sizeBytes: 60 * GiB }]);
  assert.equal((await cloud.admin.call('listSnapshots', { params: { name: 'v' } })).items.find((s) => s.name === 'big')!.sizeBytes, 60 * GiB);
  const after = (await cloud.admin.call('getNode', { params: { name: 'd1' } })).allocated.diskBytes;
  assert.equal(after, before + 60 * GiB, 'the snapshot file counts in the node\'s allocated disk');
  // 10 G (v) + 60 G (its snapshot) + 40 G > 100 G (disk ratio 1 by default): no room.
  await rejects(cloud.admin.call('createVm', { body: { name: 'w', image: 'img', disk: '40G', node: 'd1' } }), 422, 'node');
});
