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
  await rejects(cloud.admin.call('createNetwork', { body: { name: 'x', cidr: '100.126.4.0/24' } }), 400, 'cidr', /links to network gateways/);
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

test('a VM with NICs on several networks: eth0 first, an address in each; nothing half-made on refusal', async () => {
  await cloud.admin.call('createNetwork', { body: { name: 'front', cidr: '192.168.10.0/29' } });
  await cloud.admin.call('createNetwork', { body: { name: 'back', cidr: '192.168.11.0/29' } });
  const vm = await cloud.admin.call('createVm', { body: { name: 'multi', image: 'img', memory: '128M', networks: ['front', 'back'] } });
  assert.deepEqual(vm.nics.map((n) => [n.network, n.ip]), [['front', '192.168.10.2'], ['back', '192.168.11.2']]);
  assert.deepEqual([vm.network, vm.ip, vm.mac], [vm.nics[0]!.network, vm.nics[0]!.ip, vm.nics[0]!.mac]);
  assert.notEqual(vm.nics[0]!.mac, vm.nics[1]!.mac);
  assert.deepEqual((await cloud.admin.call('getVm', { params: { name: 'multi' } })).nics, vm.nics);
  assert.deepEqual((await cloud.admin.call('listVms', {})).items.find((v) => v.name === 'multi')?.nics, vm.nics);
  assert.equal((await cloud.admin.call('getNetwork', { params: { name: 'back' } })).vmCount, 1);
  // Its node runs both networks and gets both NICs.
  const d = cloud.cp.services.nodes.desired('n1');
  assert.deepEqual(d.vms.find((v) => v.name === 'multi')?.nics, vm.nics);
  assert.ok(['front', 'back'].every((n) => d.networks.some((x) => x.name === n)));
  await rejects(cloud.admin.call('deleteNetwork', { params: { name: 'back' } }), 409, 'name', /in use by VMs multi/);

  const vms0 = (await cloud.admin.call('listVms', {})).items.length;
  const nics0 = rows('vm_nics');
  const create = (body: object) => cloud.admin.call('createVm', { body: { image: 'img', memory: '128M', ...body } as never });
  await rejects(create({ name: 'x', network: 'front', networks: ['back'] }), 400, 'networks', /not both/);
  await rejects(create({ name: 'x', networks: ['front', 'front'] }), 400, 'networks', /twice/);
  await rejects(create({ name: 'x', networks: [] }), 400, 'networks');
  await rejects(create({ name: 'x', networks: ['front', 'ghost'] }), 404, 'networks', /ghost/);
  // back (/29) has room for four more; fill it, then a VM that needs it for eth1 is refused whole.
  for (let i = 1; i <= 4; i++) await create({ name: `b${i}`, network: 'back' });
  await rejects(create({ name: 'x', networks: ['front', 'back'] }), 422, 'networks', /back .* no free address/);
  assert.equal((await cloud.admin.call('listVms', {})).items.length, vms0 + 4);
  assert.equal(rows('vm_nics'), nics0);

  // Deleted (confirmed by its node), its second NIC goes with it.
  for (const name of ['multi', 'b1', 'b2', 'b3', 'b4']) await cloud.admin.call('deleteVm', { params: { name } });
  cloud.cp.services.nodes.report('n1', { capacity: { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [] });
  assert.equal(rows('vm_nics'), 0);
  await cloud.admin.call('deleteNetwork', { params: { name: 'back' } });
});

test('networks may share a CIDR (each is its own LAN), but one VM\'s NICs may not overlap', async () => {
  const a = await cloud.admin.call('createNetwork', { body: { name: 'same-a', cidr: '10.77.0.0/24' } });
  const b = await cloud.admin.call('createNetwork', { body: { name: 'same-b', cidr: '10.77.0.0/24' } });
  assert.notEqual(a.vni, b.vni);
  // The default CIDR still avoids every network's, overlapping or not.
  const c = await cloud.admin.call('createNetwork', { body: { name: 'same-c' } });
  assert.ok(!['10.77.0.0/24'].includes(c.cidr));
  // The same first address in each: two LANs, two address books.
  const va = await cloud.admin.call('createVm', { body: { name: 'same-1', image: 'img', memory: '128M', network: 'same-a' } });
  const vb = await cloud.admin.call('createVm', { body: { name: 'same-2', image: 'img', memory: '128M', network: 'same-b' } });
  assert.deepEqual([va.ip, vb.ip], ['10.77.0.2', '10.77.0.2']);
  const vms0 = (await cloud.admin.call('listVms', {})).items.length;
  await rejects(cloud.admin.call('createVm', { body: { name: 'both', image: 'img', memory: '128M', networks: ['same-a', 'same-b'] } }), 400, 'networks', /overlap/);
  assert.equal((await cloud.admin.call('listVms', {})).items.length, vms0);
  for (const name of ['same-1', 'same-2']) await cloud.admin.call('deleteVm', { params: { name } });
  cloud.cp.services.nodes.report('n1', { capacity: { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [] });
  for (const name of ['same-a', 'same-b', 'same-c']) await cloud.admin.call('deleteNetwork', { params: { name } });
});
