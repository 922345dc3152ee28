// `vm rm --force` and `node remove --force` (issue 12, item 5): a VM on a lost node can be
// deleted, a lost node can be removed, and a returning node destroys what it was told to forget.
// Control plane over real HTTP; the returning node is a real agent with the simulated driver.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Agent } from '../src/agent/agent.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import { Client } from '../src/sdk/client.ts';
import { HEARTBEAT_TIMEOUT_MS } from '../src/server/nodes.ts';
import { fakeNode, rejects, reportMesh, simAgent, startTestCloud, TEST_WG_KEYS, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let operator: Client;
let viewer: Client;
const stateDirs: string[] = [];
const agents: Agent[] = [];

before(async () => {
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'img');
  operator = new Client({ url: cloud.url, token: (await cloud.admin.call('createToken', { body: { role: 'operator' } })).secret });
  viewer = new Client({ url: cloud.url, token: (await cloud.admin.call('createToken', { body: { role: 'viewer' } })).secret });
  await cloud.admin.call('createNetwork', { body: { name: 'side', cidr: '10.77.0.0/24' } });
});
after(async () => {
  for (const a of agents) await a.stop();
  await cloud?.close();
  for (const d of stateDirs) rmSync(d, { recursive: true, force: true });
});

const db = () => cloud.cp.services.store.db;
const count = (sql: string, ...args: unknown[]) => (db().prepare(sql).get(...args) as { n: number }).n;
/** Every node silent for longer than the heartbeat timeout, by the sweep's clock (no waiting). */
const loseEveryone = () => cloud.cp.services.nodes.sweep(new Date(Date.now() + HEARTBEAT_TIMEOUT_MS + 1_000));
/** Polls `ok` until it holds (a generous bound against hanging, not a speed check). */
async function until(what: string, ok: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const nodeState = async (name: string) => (await cloud.admin.call('getNode', { params: { name } })).state;

test('vm rm --force on an unreachable node forgets the VM at once: row, NICs, address; audited as forced; gone from the desired state', async () => {
  const lost = await fakeNode(cloud, 'lost-1');
  const vm = await operator.call('createVm', { body: { name: 'orphan', image: 'img', memory: '128M', node: 'lost-1', networks: ['default', 'side'] } });
  loseEveryone();
  assert.equal(await nodeState('lost-1'), 'unreachable');

  // Plain rm waits for the node to confirm, which a lost node never does.
  const plain = await operator.call('deleteVm', { params: { name: 'orphan' } });
  assert.equal(plain.state, 'deleting');
  assert.equal((await cloud.admin.call('getVm', { params: { name: 'orphan' } })).state, 'deleting');

  const since = cloud.cp.services.store.revision();
  await operator.call('deleteVm', { params: { name: 'orphan' }, query: { force: 'true' } });
  await rejects(cloud.admin.call('getVm', { params: { name: 'orphan' } }), 404, 'name');
  assert.equal(count(`SELECT COUNT(*) AS n FROM vms WHERE id = ?`, vm.id), 0);
  assert.equal(count(`SELECT COUNT(*) AS n FROM vm_nics WHERE vm_id = ?`, vm.id), 0, 'its eth1 goes with it');
  const events = await cloud.admin.call('listEvents', { query: { since: 0 } });
  const forced = events.items.filter((e) => e.name === 'orphan' && e.revision > since);
  assert.equal(forced.length, 1, JSON.stringify(forced));
  assert.equal(forced[0]!.action, 'deleted');
  assert.match(forced[0]!.message, /forced/);
  assert.match(forced[0]!.message, /lost-1/);

  // The lost node, when it asks again, is told to run nothing: it destroys its copy.
  const desired = await lost.call('nodeDesired', { params: { name: 'lost-1' } });
  assert.ok(!('unchanged' in desired));
  assert.deepEqual(desired.vms, []);
  assert.ok(desired.revision > since, 'its desired state changed');

  // Its addresses are free again: the next VM on those networks gets them.
  await fakeNode(cloud, 'live-1');
  const next = await operator.call('createVm', { body: { name: 'next', image: 'img', memory: '128M', node: 'live-1', networks: ['default', 'side'] } });
  assert.deepEqual(next.nics.map((n) => n.ip), vm.nics.map((n) => n.ip));
  await operator.call('deleteVm', { params: { name: 'next' }, query: { force: 'false' } });
});

test('vm rm --force on a reachable node is refused (409 naming force), for admins too; viewers may not delete at all', async () => {
  await fakeNode(cloud, 'live-2');
  await operator.call('createVm', { body: { name: 'alive', image: 'img', memory: '128M', node: 'live-2' } });
  await rejects(operator.call('deleteVm', { params: { name: 'alive' }, query: { force: 'true' } }), 409, 'force', /reachable.*without --force/);
  await rejects(cloud.admin.call('deleteVm', { params: { name: 'alive' }, query: { force: 'true' } }), 409, 'force');
  await rejects(viewer.call('deleteVm', { params: { name: 'alive' }, query: { force: 'true' } }), 403);
  const vm = await cloud.admin.call('getVm', { params: { name: 'alive' } });
  assert.equal(vm.power, 'running', 'untouched');
  await rejects(operator.call('deleteVm', { params: { name: 'alive' }, query: { force: 'maybe' as never } }), 400, 'query.force');
});

test('node remove --force on a lost node forgets its VMs (forced), its mesh entry and its tokens; refused on a live node', async () => {
  const gone = await fakeNode(cloud, 'lost-2');
  const peer = await fakeNode(cloud, 'peer-2');
  await reportMesh(gone, 'lost-2', { publicKey: TEST_WG_KEYS[0], listenPort: 51820, endpoint: '192.0.2.10:51820' });
  await reportMesh(peer, 'peer-2', { publicKey: TEST_WG_KEYS[1], listenPort: 51820, endpoint: '192.0.2.11:51820' });
  const vms = [];
  for (const name of ['lost-a', 'lost-b']) vms.push(await operator.call('createVm', { body: { name, image: 'img', memory: '128M', node: 'lost-2' } }));
  const peersOf = async () => {
    const d = await peer.call('nodeDesired', { params: { name: 'peer-2' } });
    assert.ok(!('unchanged' in d));
    return d.mesh!.peers.map((p) => p.node);
  };
  assert.ok((await peersOf()).includes('lost-2'));

  // Live: plain remove refuses while it has VMs, and --force refuses while it reports.
  await rejects(cloud.admin.call('deleteNode', { params: { name: 'lost-2' } }), 409, 'name', /VM/);
  await rejects(cloud.admin.call('deleteNode', { params: { name: 'lost-2' }, query: { force: 'true' } }), 409, 'force', /reachable/);
  await rejects(operator.call('deleteNode', { params: { name: 'lost-2' }, query: { force: 'true' } }), 403);

  loseEveryone();
  await reportMesh(peer, 'peer-2', { publicKey: TEST_WG_KEYS[1], listenPort: 51820, endpoint: '192.0.2.11:51820' });
  assert.equal(await nodeState('lost-2'), 'unreachable');
  assert.equal(await nodeState('peer-2'), 'ready');
  await rejects(cloud.admin.call('deleteNode', { params: { name: 'lost-2' } }), 409, 'name', /--force/);

  const since = cloud.cp.services.store.revision();
  await cloud.admin.call('deleteNode', { params: { name: 'lost-2' }, query: { force: 'true' } });
  await rejects(cloud.admin.call('getNode', { params: { name: 'lost-2' } }), 404);
  for (const vm of vms) await rejects(cloud.admin.call('getVm', { params: { name: vm.name } }), 404, 'name');
  assert.equal(count(`SELECT COUNT(*) AS n FROM tokens WHERE node = 'lost-2'`), 0);
  await rejects(gone.call('nodeDesired', { params: { name: 'lost-2' } }), 401);
  assert.ok(!(await peersOf()).includes('lost-2'), 'its mesh peers drop it');
  const events = (await cloud.admin.call('listEvents', { query: { since: 0 } })).items.filter((e) => e.revision > since);
  assert.deepEqual(events.filter((e) => e.resource === 'vm').map((e) => [e.name, e.action, /forced/.test(e.message)]), [['lost-a', 'deleted', true], ['lost-b', 'deleted', true]]);
  assert.match(events.find((e) => e.resource === 'node')!.message, /forced/);
});

test('a node that returns after vm rm --force destroys its copy (real agent, simulated driver)', async () => {
  const { agent: first, stateDir, again } = await simAgent(cloud, 'sim-r');
  stateDirs.push(stateDir);
  await first.start();
  const vm = await operator.call('createVm', { body: { name: 'ret', image: 'img', memory: '128M', node: 'sim-r' } });
  await until('ret running', async () => (await cloud.admin.call('getVm', { params: { name: 'ret' } })).state === 'running');
  // The node goes away (its VMs keep running, as QEMU outlives the agent).
  await first.stop();
  loseEveryone();
  assert.equal(await nodeState('sim-r'), 'unreachable');
  assert.deepEqual((await new SimDriver({ stateDir }).list()).map((o) => o.id), [vm.id]);

  await operator.call('deleteVm', { params: { name: 'ret' }, query: { force: 'true' } });
  await rejects(cloud.admin.call('getVm', { params: { name: 'ret' } }), 404, 'name');

  // It comes back: its desired state no longer has the VM, so it destroys its copy.
  const second = again();
  agents.push(second);
  await second.start();
  await until('the returned node destroyed its copy', async () => (await new SimDriver({ stateDir }).list()).length === 0);
  assert.equal(await nodeState('sim-r'), 'ready');
  // Its reports (now without the VM) bring nothing back.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(count(`SELECT COUNT(*) AS n FROM vms WHERE id = ?`, vm.id), 0);
});
