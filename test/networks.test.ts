/** Private networks through the API: create, list, show, rm; validation; VMs attached to one. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../src/sdk/client.ts';
import { fakeNode, rejects, startTestCloud, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
before(async () => {
  cloud = await startTestCloud();
  await fakeNode(cloud, 'n1');
  await uploadImage(cloud.admin, 'img');
});
after(async () => {
  await cloud.close();
});

const rows = (table: string) => (cloud.cp.services.store.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

test('the default network exists, with room in its MTU for VXLAN and WireGuard', async () => {
  const d = await cloud.admin.call('getNetwork', { params: { name: 'default' } });
  assert.deepEqual({ cidr: d.cidr, gateway: d.gateway, mtu: d.mtu, nat: d.nat }, { cidr: '10.200.0.0/16', gateway: '10.200.0.1', mtu: 1390, nat: true });
});

test('create picks a free /16 by default and a VNI of its own', async () => {
  const a = await cloud.admin.call('createNetwork', { body: { name: 'net-a' } });
  assert.equal(a.cidr, '10.0.0.0/16');
  assert.equal(a.gateway, '10.0.0.1');
  const b = await cloud.admin.call('createNetwork', { body: { name: 'net-b', cidr: '10.2.0.0/24', nat: false } });
  assert.equal(b.nat, false);
  assert.deepEqual([a.vni, b.vni], [101, 102]);
  const c = await cloud.admin.call('createNetwork', { body: { name: 'net-c' } });
  assert.equal(c.cidr, '10.1.0.0/16', 'the default skips CIDRs in use');
  const names = (await cloud.admin.call('listNetworks', {})).items.map((n) => n.name);
  assert.deepEqual(names, ['default', 'net-a', 'net-b', 'net-c']);
});

test('bad input names the field and makes nothing', async () => {
  const n0 = rows('networks');
  const e0 = rows('events');
  await rejects(cloud.admin.call('createNetwork', { body: { name: 'Bad_Name' } }), 400, 'name');
  await rejects(cloud.admin.call('createNetwork', { body: { name: 'x', cidr: '10.20.0.1/16' } }), 400, 'cidr', /host bits.*10\.20\.0\.0\/16/);
  await rejects(cloud.admin.call('createNetwork', { body: { name: 'x', cidr: '10.20.0.0/30' } }), 400, 'cidr', /out of range/);
  await rejects(cloud.admin.call('createNetwork', { body: { name: 'x', cidr: '169.254.0.0/24' } }), 400, 'cidr', /link-local/);
  await rejects(cloud.admin.call('createNetwork', { body: { name: 'x', cidr: '100.127.0.0/24' } }), 400, 'cidr', /mesh/);
  await rejects(cloud.admin.call('createNetwork', { body: { name: 'x', cidr: 'ten' } }), 400, 'cidr');
  await rejects(cloud.admin.call('createNetwork', { body: { name: 'x', cidr: '10.0.128.0/17' } }), 409, 'cidr', /overlaps network net-a/);
  await rejects(cloud.admin.call('createNetwork', { body: { name: 'default' } }), 409, 'name');
  await rejects(cloud.admin.call('getNetwork', { params: { name: 'ghost' } }), 404, 'network');
  await rejects(cloud.admin.call('deleteNetwork', { params: { name: 'ghost' } }), 404, 'network');
  assert.equal(rows('networks'), n0);
  assert.equal(rows('events'), e0);
});

test('a VM gets its address in the network it names; rm is refused while it is attached', async () => {
  await cloud.admin.call('createNetwork', { body: { name: 'small', cidr: '192.168.7.0/29' } });
  const vm = await cloud.admin.call('createVm', { body: { name: 'v1', image: 'img', memory: '128M', network: 'small' } });
  assert.equal(vm.network, 'small');
  assert.equal(vm.ip, '192.168.7.2');
  assert.equal((await cloud.admin.call('getNetwork', { params: { name: 'small' } })).vmCount, 1);
  const desired = cloud.cp.services.nodes.desired('n1');
  const small = (await cloud.admin.call('getNetwork', { params: { name: 'small' } })).vni;
  assert.deepEqual(desired.networks.find((n) => n.name === 'small'), { name: 'small', cidr: '192.168.7.0/29', gateway: '192.168.7.1', mtu: 1390, nat: true, vni: small, remotes: [] });

  const n0 = rows('networks');
  await rejects(cloud.admin.call('deleteNetwork', { params: { name: 'small' } }), 409, 'name', /in use by VMs v1/);
  await rejects(cloud.admin.call('createVm', { body: { name: 'v2', image: 'img', network: 'ghost' } }), 404, 'network');
  assert.equal(rows('networks'), n0);
  assert.equal((await cloud.admin.call('listVms', {})).items.length, 1);

  // A /29 holds the gateway and five VMs: the sixth is refused, naming the network.
  for (let i = 2; i <= 5; i++) await cloud.admin.call('createVm', { body: { name: `v${i}`, image: 'img', memory: '128M', network: 'small' } });
  await rejects(cloud.admin.call('createVm', { body: { name: 'v6', image: 'img', memory: '128M', network: 'small' } }), 422, 'network', /no free address/);
  assert.equal((await cloud.admin.call('listVms', {})).items.length, 5);

  // Once its VMs are gone (their node confirms), the network can go.
  for (let i = 1; i <= 5; i++) await cloud.admin.call('deleteVm', { params: { name: `v${i}` } });
  cloud.cp.services.nodes.report('n1', { capacity: { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [] });
  await cloud.admin.call('deleteNetwork', { params: { name: 'small' } });
  await rejects(cloud.admin.call('getNetwork', { params: { name: 'small' } }), 404);
});

test('a viewer lists networks but cannot create or remove one', async () => {
  const { secret } = await cloud.admin.call('createToken', { body: { role: 'viewer' } });
  const viewer = new Client({ url: cloud.url, token: secret });
  assert.ok((await viewer.call('listNetworks', {})).items.length > 0);
  await rejects(viewer.call('createNetwork', { body: { name: 'nope' } }), 403);
  await rejects(viewer.call('deleteNetwork', { params: { name: 'net-a' } }), 403);
});
