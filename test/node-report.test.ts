// The heartbeat's cost in the control plane (nodes.ts, `report`): a report that repeats the
// node's last one, with nothing written to the store since, is noted without reading the
// node's VMs, snapshots or networks again (1,000 agents report every 5 s). Anything written in
// between (a sweep, a delete, a create) and any difference in the report reads them again, so
// what the report changes is still acted on.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeReport } from '../src/api/schemas/node.ts';
import { HEARTBEAT_TIMEOUT_MS } from '../src/server/nodes.ts';
import { Client } from '../src/sdk/client.ts';
import { fakeNode, startTestCloud, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;

before(async () => {
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'img');
});
after(async () => {
  await cloud?.close();
});

const CAPACITY = { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 };

/** The SQL texts the store runs while `fn` does. */
function statements(fn: () => void): string[] {
  const db = cloud.cp.services.store.db;
  const prepare = db.prepare;
  const seen: string[] = [];
  db.prepare = ((sql: string) => (seen.push(sql), prepare.call(db, sql))) as typeof db.prepare;
  try {
    fn();
  } finally {
    db.prepare = prepare;
  }
  return seen;
}

/** What the node's agent would report: each of its VMs running, its pending snapshots made. */
async function agentReport(node: string): Promise<NodeReport> {
  const d = await cloud.cp.services.nodes.desired(node);
  return { capacity: CAPACITY, accel: 'tcg', driver: 'sim', vms: d.vms.map((v) => ({ id: v.id, state: 'running' as const, snapshots: (v.snapshots ?? []).filter((s) => s.state === 'pending').map((s) => ({ id: s.id, state: 'ready' as const })) })) };
}

test('a heartbeat that repeats the last one, nothing written since, reads none of the VMs, snapshots or networks', async () => {
  await fakeNode(cloud, 'steady');
  for (const name of ['s-1', 's-2']) await cloud.admin.call('createVm', { body: { name, image: 'img', node: 'steady' } });
  const rep = await agentReport('steady');
  const { nodes } = cloud.cp.services;
  nodes.report('steady', rep); // the VMs' states and snapshots: a write
  assert.equal((await cloud.admin.call('getVm', { params: { name: 's-1' } })).state, 'running');
  nodes.report('steady', rep); // nothing new: found so by reading the store
  const again = statements(() => nodes.report('steady', structuredClone(rep)));
  assert.deepEqual(
    again.filter((sql) => /\b(vms|snapshots|network_status|networks)\b/.test(sql)),
    [],
    `the same report again read:\n${again.join('\n')}`,
  );
  const before = cloud.cp.services.store.revision();
  nodes.report('steady', rep);
  assert.equal(cloud.cp.services.store.revision(), before, 'and wrote nothing');
  const seen = (await cloud.admin.call('getNode', { params: { name: 'steady' } })).lastHeartbeatAt!;
  assert.ok(Date.now() - Date.parse(seen) < 5_000, `but was seen: last heartbeat ${seen}`);
});

test('the same report after a write in between is read again: a node the sweep marked unreachable is ready again', async () => {
  await fakeNode(cloud, 'swept');
  await cloud.admin.call('createVm', { body: { name: 'w-1', image: 'img', node: 'swept' } });
  const rep = await agentReport('swept');
  const { nodes } = cloud.cp.services;
  nodes.report('swept', rep);
  nodes.report('swept', rep);
  nodes.sweep(new Date(Date.now() + HEARTBEAT_TIMEOUT_MS + 1_000));
  assert.equal((await cloud.admin.call('getNode', { params: { name: 'swept' } })).state, 'unreachable');
  assert.equal((await cloud.admin.call('getVm', { params: { name: 'w-1' } })).state, 'unknown');
  nodes.report('swept', rep);
  assert.equal((await cloud.admin.call('getNode', { params: { name: 'swept' } })).state, 'ready');
  assert.equal((await cloud.admin.call('getVm', { params: { name: 'w-1' } })).state, 'running');
});

test('the same report after a delete confirms it: the VM it no longer lists is gone', async () => {
  await fakeNode(cloud, 'deleter');
  await cloud.admin.call('createVm', { body: { name: 'd-1', image: 'img', node: 'deleter' } });
  const { nodes } = cloud.cp.services;
  const empty: NodeReport = { capacity: CAPACITY, accel: 'tcg', driver: 'sim', vms: [] };
  nodes.report('deleter', empty); // it has not started it yet
  nodes.report('deleter', empty);
  await cloud.admin.call('deleteVm', { params: { name: 'd-1' } });
  nodes.report('deleter', empty); // the same words now mean "destroyed"
  await assert.rejects(cloud.admin.call('getVm', { params: { name: 'd-1' } }), /not found/);
});

test('a report that differs from the last one is read: a VM that stopped is stopped', async () => {
  await fakeNode(cloud, 'changer');
  await cloud.admin.call('createVm', { body: { name: 'c-1', image: 'img', node: 'changer' } });
  const rep = await agentReport('changer');
  const { nodes } = cloud.cp.services;
  nodes.report('changer', rep);
  nodes.report('changer', rep);
  nodes.report('changer', { ...rep, vms: rep.vms.map((v) => ({ ...v, state: 'stopped' as const, reason: 'exited 0' })) });
  const vm = await cloud.admin.call('getVm', { params: { name: 'c-1' } });
  assert.equal(vm.state, 'stopped');
  assert.equal(vm.reason, 'exited 0');
});

test("a node's token is read once between writes, and a revoked one is refused at once", async () => {
  const { token } = await cloud.admin.call('createNode', { body: { name: 'tokened' } });
  const node = new Client({ url: cloud.url, token });
  const body: NodeReport = { capacity: CAPACITY, accel: 'tcg', driver: 'sim', vms: [] };
  const beat = () => node.call('nodeReport', { params: { name: 'tokened' }, body });
  await beat();
  await beat();
  const db = cloud.cp.services.store.db;
  const prepare = db.prepare;
  const seen: string[] = [];
  db.prepare = ((sql: string) => (seen.push(sql), prepare.call(db, sql))) as typeof db.prepare;
  try {
    for (let i = 0; i < 3; i++) await beat();
  } finally {
    db.prepare = prepare;
  }
  assert.deepEqual(seen.filter((sql) => /FROM tokens/.test(sql)), [], `three heartbeats read:\n${seen.join('\n')}`);
  const id = (await cloud.admin.call('listTokens', {})).items.find((t) => t.node === 'tokened')!.id;
  await cloud.admin.call('deleteToken', { params: { id } });
  await assert.rejects(beat(), /unknown token/);
});
