/**
 * What agents say of their networks (issue 12): stored per (network, node), shown by
 * `network show` (API and CLI) and on the VM; a heartbeat that says the same costs no write;
 * gone with the network.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeReport } from '../src/api/schemas/node.ts';
import type { Client } from '../src/sdk/client.ts';
import { fakeNode, runButter, startTestCloud, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let n1: Client;
let work: string;

before(async () => {
  if (!existsSync(fileURLToPath(new URL('../dist/cli/main.js', import.meta.url)))) throw new Error('run `npm run build` first');
  cloud = await startTestCloud();
  n1 = await fakeNode(cloud, 'n1');
  await uploadImage(cloud.admin, 'img');
  work = mkdtempSync(join(tmpdir(), 'butter-netstatus-'));
});
after(async () => {
  await cloud?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const report = (extra: Partial<NodeReport>) =>
  n1.call('nodeReport', { params: { name: 'n1' }, body: { capacity: { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [], ...extra } });
const show = (name: string) => cloud.admin.call('getNetwork', { params: { name } });
const revision = () => cloud.cp.services.store.revision();
/** The built CLI, run without blocking: the control plane answering it lives in this process. */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runButter(args, { ...process.env, XDG_CONFIG_HOME: join(work, 'cfg'), BUTTER_URL: cloud.url, BUTTER_TOKEN: cloud.cp.adminToken! });
}

test('a network in error on a node shows per node, on the VM and in the events; the same heartbeat writes nothing; ready clears it', async () => {
  await cloud.admin.call('createNetwork', { body: { name: 'blue' } });
  const vm = await cloud.admin.call('createVm', { body: { name: 'v1', image: 'img', network: 'blue' } });
  assert.deepEqual((await show('blue')).nodes, [{ node: 'n1', state: 'pending', error: null }]);
  assert.deepEqual((await show('default')).nodes, []);

  const why = 'bt-blue exists and is a veth interface, not a bridge';
  const broken: Partial<NodeReport> = { vms: [{ id: vm.id, state: 'error', reason: `network blue: ${why}` }], networks: [{ name: 'blue', state: 'error', error: why }] };
  await report(broken);
  assert.deepEqual((await show('blue')).nodes, [{ node: 'n1', state: 'error', error: why }]);
  assert.deepEqual((await cloud.admin.call('listNetworks', {})).items.find((n) => n.name === 'blue')?.nodes, [{ node: 'n1', state: 'error', error: why }]);
  const v = await cloud.admin.call('getVm', { params: { name: 'v1' } });
  assert.deepEqual([v.state, v.reason], ['error', `network blue: ${why}`]);
  const events = (await cloud.admin.call('listEvents', {})).items.filter((e) => e.resource === 'network' && e.name === 'blue');
  assert.deepEqual(events.map((e) => e.action), ['create', 'error']);
  assert.match(events[1]!.message, /on node n1: bt-blue exists/);

  // The CLI shows it.
  const out = await cli(['network', 'show', 'blue']);
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, new RegExp(`node n1: +error: ${why}`));

  // The same again, or no word on networks at all: no write, nothing changes.
  const rev = revision();
  await report(broken);
  await report({ vms: broken.vms! });
  assert.equal(revision(), rev);
  assert.equal((await show('blue')).nodes[0]!.state, 'error');

  // Built again (and a network removed meanwhile is ignored, not refused).
  await report({ vms: [{ id: vm.id, state: 'running' }], networks: [{ name: 'blue', state: 'ready' }, { name: 'ghost', state: 'ready' }] });
  assert.deepEqual((await show('blue')).nodes, [{ node: 'n1', state: 'ready', error: null }]);
  assert.equal((await cloud.admin.call('getVm', { params: { name: 'v1' } })).reason, null);
  // A node speaks only for the networks it hosts: n1 runs nothing on default.
  const before = (await cloud.admin.call('listEvents', {})).items.length;
  await report({ vms: [{ id: vm.id, state: 'running' }], networks: [{ name: 'blue', state: 'ready' }, { name: 'default', state: 'error', error: 'made up' }] });
  assert.deepEqual((await show('default')).nodes, []);
  assert.equal((await cloud.admin.call('listEvents', {})).items.length, before);
  assert.equal((cloud.cp.services.store.db.prepare(`SELECT COUNT(*) AS n FROM network_status WHERE network = 'default'`).get() as { n: number }).n, 0);
  assert.deepEqual((await cloud.admin.call('listEvents', {})).items.filter((e) => e.resource === 'network' && e.name === 'blue').map((e) => e.action), ['create', 'error', 'ready']);
  assert.match((await cli(['network', 'show', 'blue'])).stdout, /node n1: +ready\n/);

  // Gone with the network.
  await cloud.admin.call('deleteVm', { params: { name: 'v1' } });
  await report({ networks: [{ name: 'blue', state: 'ready' }] });
  await cloud.admin.call('deleteNetwork', { params: { name: 'blue' } });
  assert.equal((cloud.cp.services.store.db.prepare(`SELECT COUNT(*) AS n FROM network_status`).get() as { n: number }).n, 0);
});
