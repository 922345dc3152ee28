/** VPN peers through the API: join, the gateway's desired state, the others' forwarding, revoke; bad input. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '../src/sdk/client.ts';
import { vpnRouterMac } from '../src/core/network-macs.ts';
import { fakeNode, rejects, reportMesh, startTestCloud, TEST_WG_KEYS, uploadImage, type TestCloud } from './helpers.ts';

const [NODE_A, NODE_B, LAPTOP, PHONE] = TEST_WG_KEYS;
const NODE_KEYS = [NODE_A, NODE_B];

let cloud: TestCloud;
let a: Client;
let b: Client;
before(async () => {
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'img');
  a = await fakeNode(cloud, 'node-a');
  b = await fakeNode(cloud, 'node-b');
  await cloud.admin.call('createNetwork', { body: { name: 'lan', cidr: '10.20.0.0/24' } });
});
after(async () => {
  await cloud.close();
});

const report = reportMesh;
const desired = async (c: Client, name: string) => {
  const d = await c.call('nodeDesired', { params: { name } });
  assert.ok(!('unchanged' in d));
  return d;
};
const count = (sql: string) => (cloud.cp.services.store.db.prepare(sql).get() as { n: number }).n;

test('no peer can join before a node is in the mesh; nothing is written', async () => {
  await rejects(cloud.admin.call('joinNetwork', { params: { name: 'lan' }, body: { name: 'laptop', publicKey: LAPTOP } }), 409, 'network', /mesh/);
  assert.equal(count(`SELECT COUNT(*) AS n FROM vpn_peers`), 0);
});

test('a peer joins through the node with an endpoint and gets a ready configuration', async () => {
  // node-a reports from loopback with no endpoint: a laptop could not reach it.
  await report(a, 'node-a', { publicKey: NODE_KEYS[0], listenPort: 51820 });
  await report(b, 'node-b', { publicKey: NODE_KEYS[1], listenPort: 51820, endpoint: '192.0.2.2:51820' });
  await cloud.admin.call('createVm', { body: { name: 'va', image: 'img', memory: '128M', network: 'lan', node: 'node-a' } });

  const p = await cloud.admin.call('joinNetwork', { params: { name: 'lan' }, body: { name: 'laptop', publicKey: LAPTOP } });
  assert.equal(p.gateway, 'node-b');
  // .2 is va's, .3 the router port's, .4 the laptop's.
  assert.equal(p.ip, '10.20.0.4');
  assert.deepEqual(p.config, {
    address: '10.20.0.4/24',
    dns: '10.20.0.1',
    mtu: 1390,
    serverPublicKey: NODE_KEYS[1],
    endpoint: '192.0.2.2:51820',
    allowedIps: ['10.20.0.0/24'],
    persistentKeepalive: 25,
  });
  assert.equal(p.endpointSource, 'mesh', "the gateway node's own mesh endpoint");
  assert.equal(JSON.stringify(p).includes('privateKey'), false);
  const net = await cloud.admin.call('getNetwork', { params: { name: 'lan' } });
  assert.deepEqual([net.vpnGateway, net.peerCount], ['node-b', 1]);

  // The gateway hosts the network (no VM of it there) with the router and the peer.
  const db = await desired(b, 'node-b');
  const lan = db.networks.find((n) => n.name === 'lan');
  assert.deepEqual(lan?.vpn, { address: '10.20.0.3', mac: vpnRouterMac('lan'), peers: [{ name: 'laptop', publicKey: LAPTOP, ip: '10.20.0.4' }] });
  // node-a forwards the router's MAC to the gateway and floods ARP there.
  const da = await desired(a, 'node-a');
  assert.deepEqual(da.networks.find((n) => n.name === 'lan')?.remotes, [{ node: 'node-b', address: '100.127.0.3', vms: [], router: { mac: vpnRouterMac('lan'), ip: '10.20.0.3' } }]);
  assert.equal(da.networks.find((n) => n.name === 'lan')?.vpn, undefined);
  // A new VM never takes a peer's or the router's address.
  const vm = await cloud.admin.call('createVm', { body: { name: 'vb', image: 'img', memory: '128M', network: 'lan', node: 'node-b' } });
  assert.equal(vm.ip, '10.20.0.5');
});

test('a second peer, with its own endpoint; peers are listed', async () => {
  const p = await cloud.admin.call('joinNetwork', { params: { name: 'lan' }, body: { name: 'phone', publicKey: PHONE, endpoint: 'home.example.net:443' } });
  assert.deepEqual([p.gateway, p.ip, p.config.endpoint, p.endpointSource], ['node-b', '10.20.0.6', 'home.example.net:443', 'request']);
  const { items } = await cloud.admin.call('listNetworkPeers', { params: { name: 'lan' } });
  assert.deepEqual(items.map((i) => [i.name, i.ip, i.endpoint]), [['laptop', '10.20.0.4', '192.0.2.2:51820'], ['phone', '10.20.0.6', 'home.example.net:443']]);
});

test('bad input names the field and writes nothing', async () => {
  const before = count(`SELECT COUNT(*) AS n FROM vpn_peers`);
  const join = (body: object, name = 'lan') => cloud.admin.call('joinNetwork', { params: { name }, body: body as never });
  await rejects(join({ name: 'laptop', publicKey: 'x0y6C1Nd2MbFvD7Q9U8IZ3iYx2I7wN4yQy6ZKbvH0Xk=' }), 409, 'name');
  await rejects(join({ name: 'other', publicKey: LAPTOP }), 409, 'publicKey', /peer laptop/);
  await rejects(join({ name: 'other', publicKey: NODE_KEYS[0] }), 409, 'publicKey', /node node-a/);
  await rejects(join({ name: 'other', publicKey: 'not-a-key' }), 400, 'publicKey');
  await rejects(join({ name: 'Bad_Name', publicKey: 'x0y6C1Nd2MbFvD7Q9U8IZ3iYx2I7wN4yQy6ZKbvH0Xk=' }), 400, 'name');
  await rejects(join({ name: 'other', publicKey: 'x0y6C1Nd2MbFvD7Q9U8IZ3iYx2I7wN4yQy6ZKbvH0Xk=', endpoint: 'no port' }), 400, 'endpoint');
  await rejects(join({ name: 'other', publicKey: 'x0y6C1Nd2MbFvD7Q9U8IZ3iYx2I7wN4yQy6ZKbvH0Xk=' }, 'ghost'), 404, 'network');
  await rejects(cloud.admin.call('revokeNetworkPeer', { params: { name: 'lan', peer: 'ghost' } }), 404, 'peer');
  assert.equal(count(`SELECT COUNT(*) AS n FROM vpn_peers`), before);
  // A node may not take a peer's key either: it would sit beside it on the gateway's interface.
  await rejects(report(a, 'node-a', { publicKey: LAPTOP, listenPort: 51820 }), 409, 'mesh.publicKey', /VPN peer laptop/);
});

test('a network with peers, or their gateway node, is not removed from under them', async () => {
  await rejects(cloud.admin.call('deleteNetwork', { params: { name: 'lan' } }), 409, 'name', /VMs va, vb/);
  await cloud.admin.call('deleteVm', { params: { name: 'vb' } });
  await rejects(cloud.admin.call('deleteNode', { params: { name: 'node-b' } }), 409, 'name');
});

test('revoke drops the peer at the gateway; the last one takes the router away everywhere', async () => {
  await cloud.admin.call('revokeNetworkPeer', { params: { name: 'lan', peer: 'phone' } });
  assert.deepEqual((await desired(b, 'node-b')).networks.find((n) => n.name === 'lan')?.vpn?.peers.map((p) => p.name), ['laptop']);

  const da = await desired(a, 'node-a');
  const watching = a.call('nodeDesired', { params: { name: 'node-a' }, query: { since: da.revision, wait: 20 } });
  await cloud.admin.call('revokeNetworkPeer', { params: { name: 'lan', peer: 'laptop' } });
  const woke = await watching;
  assert.ok(!('unchanged' in woke));
  // vb's deletion waits for node-b's confirmation, so node-b stays a host, without the router.
  assert.deepEqual(woke.networks.find((n) => n.name === 'lan')?.remotes.map((r) => [r.node, r.router]), [['node-b', undefined]], 'node-a forgets the router');
  const net = await cloud.admin.call('getNetwork', { params: { name: 'lan' } });
  assert.deepEqual([net.vpnGateway, net.peerCount], [null, 0]);
  assert.equal((await cloud.admin.call('listNetworkPeers', { params: { name: 'lan' } })).items.length, 0);
});

test("a gateway beside the control plane (loopback, `butter up`): its address on its default route, said so; endpoint still overrides; neither: the refusal names --endpoint", async () => {
  await cloud.admin.call('createNetwork', { body: { name: 'home', cidr: '10.30.0.0/24' } });
  // Both nodes report from loopback with no endpoint: nothing a laptop could reach.
  await report(a, 'node-a', { publicKey: NODE_KEYS[0], listenPort: 51820 });
  await report(b, 'node-b', { publicKey: NODE_KEYS[1], listenPort: 51820 });
  const before = count(`SELECT COUNT(*) AS n FROM vpn_peers`);
  await rejects(cloud.admin.call('joinNetwork', { params: { name: 'home' }, body: { name: 'laptop', publicKey: LAPTOP } }), 409, 'endpoint', /--endpoint/);
  assert.equal(count(`SELECT COUNT(*) AS n FROM vpn_peers`), before);
  assert.equal(count(`SELECT COUNT(*) AS n FROM networks WHERE name = 'home' AND vpn_node IS NOT NULL`), 0, 'no gateway chosen either');

  // node-a's agent knows its address on the default route: the gateway is the node a laptop can reach.
  await report(a, 'node-a', { publicKey: NODE_KEYS[0], listenPort: 51820, defaultAddress: '192.0.2.10' });
  const p = await cloud.admin.call('joinNetwork', { params: { name: 'home' }, body: { name: 'laptop', publicKey: LAPTOP } });
  assert.deepEqual([p.gateway, p.config.endpoint, p.endpoint, p.endpointSource, p.config.serverPublicKey], ['node-a', '192.0.2.10:51820', '192.0.2.10:51820', 'default-route', NODE_KEYS[0]]);
  const other = await cloud.admin.call('joinNetwork', { params: { name: 'home' }, body: { name: 'phone', publicKey: PHONE, endpoint: 'vpn.example.net:51820' } });
  assert.deepEqual([other.gateway, other.config.endpoint, other.endpointSource], ['node-a', 'vpn.example.net:51820', 'request']);

  // The mesh between nodes is as before: node-b still learns no endpoint for node-a (node-a sends first; WireGuard roams).
  assert.deepEqual((await desired(b, 'node-b')).mesh?.peers.map((x) => [x.node, x.endpoint]), [['node-a', null]]);
  // A bad address is refused, naming the field.
  await rejects(report(a, 'node-a', { publicKey: NODE_KEYS[0], listenPort: 51820, defaultAddress: 'example.net' }), 400, 'mesh.defaultAddress');
  for (const peer of ['laptop', 'phone']) await cloud.admin.call('revokeNetworkPeer', { params: { name: 'home', peer } });
});
