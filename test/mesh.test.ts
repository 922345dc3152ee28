/** The node mesh through the API: keys in reports, addresses, peers in desired state, wake-ups. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '../src/sdk/client.ts';
import { fakeNode, rejects, reportMesh, startTestCloud, TEST_WG_KEYS, type TestCloud } from './helpers.ts';
import { within } from './within.ts';

const KEYS = TEST_WG_KEYS;

let cloud: TestCloud;
let a: Client;
let b: Client;
before(async () => {
  cloud = await startTestCloud();
  a = await fakeNode(cloud, 'node-a');
  b = await fakeNode(cloud, 'node-b');
});
after(async () => {
  await cloud.close();
});

const report = reportMesh;

test('a node without a key has no place in the mesh', async () => {
  const d = await a.call('nodeDesired', { params: { name: 'node-a' } });
  assert.ok(!('unchanged' in d));
  assert.equal(d.mesh, null);
  assert.equal((await cloud.admin.call('getNode', { params: { name: 'node-a' } })).mesh, null);
});

test('reported keys become addresses and peers; a join wakes the other nodes at once', async () => {
  await report(a, 'node-a', { publicKey: KEYS[0], listenPort: 51820, endpoint: '192.0.2.1:51820' });
  const da = await a.call('nodeDesired', { params: { name: 'node-a' } });
  assert.ok(!('unchanged' in da));
  assert.deepEqual(da.mesh, { address: '100.127.0.2', prefix: 16, mtu: 1440, peers: [] });

  // node-a watches; node-b joining the mesh must answer that watch, not its timeout.
  // The longest watch (60 s), and a deadline at half of it: only a wake on the join answers in time.
  const watching = a.call('nodeDesired', { params: { name: 'node-a' }, query: { since: da.revision, wait: 60 } });
  // From loopback, with no endpoint given: other machines could not use 127.0.0.1.
  await report(b, 'node-b', { publicKey: KEYS[1], listenPort: 51821 });
  const woke = await within(watching, 30_000, 'the watch did not answer on the join');
  assert.ok(!('unchanged' in woke));
  assert.deepEqual(woke.mesh?.peers, [{ node: 'node-b', publicKey: KEYS[1], endpoint: null, address: '100.127.0.3' }]);
  const db = await b.call('nodeDesired', { params: { name: 'node-b' } });
  assert.ok(!('unchanged' in db));
  assert.deepEqual(db.mesh?.peers, [{ node: 'node-a', publicKey: KEYS[0], endpoint: '192.0.2.1:51820', address: '100.127.0.2' }]);
  const shown = await cloud.admin.call('getNode', { params: { name: 'node-b' } });
  assert.deepEqual(shown.mesh, { address: '100.127.0.3', publicKey: KEYS[1], endpoint: null });
});

test('the same report again changes nothing; a new endpoint keeps the address', async () => {
  const rev = cloud.cp.services.store.revision();
  await report(a, 'node-a', { publicKey: KEYS[0], listenPort: 51820, endpoint: '192.0.2.1:51820' });
  assert.equal(cloud.cp.services.store.revision(), rev, 'no write for an unchanged mesh end');
  await report(a, 'node-a', { publicKey: KEYS[0], listenPort: 51820, endpoint: '192.0.2.9:51820' });
  const db = await b.call('nodeDesired', { params: { name: 'node-b' } });
  assert.ok(!('unchanged' in db));
  assert.deepEqual(db.mesh?.peers.map((p) => [p.address, p.endpoint]), [['100.127.0.2', '192.0.2.9:51820']]);
});

test('bad mesh reports are refused, naming the field, and change nothing', async () => {
  const rev = cloud.cp.services.store.revision();
  const refused = (mesh: object, status: number, field: string) => rejects(report(b, 'node-b', mesh), status, field);
  await refused({ publicKey: 'not-a-key', listenPort: 1 }, 400, 'mesh.publicKey');
  await refused({ publicKey: KEYS[2], listenPort: 70000 }, 400, 'mesh.listenPort');
  await refused({ publicKey: KEYS[2], listenPort: 1, endpoint: 'no port' }, 400, 'mesh.endpoint');
  await refused({ publicKey: KEYS[0], listenPort: 51821 }, 409, 'mesh.publicKey'); // node-a's key
  assert.equal(cloud.cp.services.store.revision(), rev);
  assert.equal((await cloud.admin.call('getNode', { params: { name: 'node-b' } })).mesh?.publicKey, KEYS[1]);
});

test('a removed node disappears from every peer list', async () => {
  const c = await fakeNode(cloud, 'node-c');
  await report(c, 'node-c', { publicKey: KEYS[2], listenPort: 51820, endpoint: '192.0.2.3:51820' });
  const before = await a.call('nodeDesired', { params: { name: 'node-a' } });
  assert.ok(!('unchanged' in before));
  assert.deepEqual(before.mesh?.peers.map((p) => p.node), ['node-b', 'node-c']);
  const watching = a.call('nodeDesired', { params: { name: 'node-a' }, query: { since: before.revision, wait: 20 } });
  await cloud.admin.call('deleteNode', { params: { name: 'node-c' } });
  const after = await watching;
  assert.ok(!('unchanged' in after));
  assert.deepEqual(after.mesh?.peers.map((p) => p.node), ['node-b']);
});

test('the mesh and every network size for the smallest underlay any node reports', async () => {
  const n = (await cloud.admin.call('getNetwork', { params: { name: 'default' } })).mtu;
  assert.equal(n, 1390, 'nothing reported: a 1500-byte underlay is assumed');
  await report(b, 'node-b', { publicKey: KEYS[1], listenPort: 51821, underlayMtu: 1420 });
  assert.equal((await cloud.admin.call('getNetwork', { params: { name: 'default' } })).mtu, 1310);
  const da = await a.call('nodeDesired', { params: { name: 'node-a' } });
  assert.ok(!('unchanged' in da));
  assert.equal(da.mesh?.mtu, 1360, 'WireGuard: 1420 less 60');
  await report(b, 'node-b', { publicKey: KEYS[1], listenPort: 51821, underlayMtu: 9000 });
  assert.equal((await cloud.admin.call('getNetwork', { params: { name: 'default' } })).mtu, 1390, 'node-a still counts as 1500');
  await rejects(report(b, 'node-b', { publicKey: KEYS[1], listenPort: 51821, underlayMtu: 500 }), 400, 'mesh.underlayMtu');
});
