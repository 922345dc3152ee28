/**
 * Suspend and resume (issue 16, memory snapshots) through the real control plane and a real
 * agent with the simulated driver (its "memory state" is a file): the states a VM goes
 * through, the refusals (naming the state), `--release` and a resume that no longer fits, a
 * cold start refused in favour of resume, `vm stop` discarding the state, a restore refused
 * while suspended, and a suspended VM on a lost node reported as such.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { HEARTBEAT_TIMEOUT_MS } from '../src/server/nodes.ts';
import { cloudWithSimNode, fakeNode, rejects, runButter, until, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let stateDir: string;
let close: (() => Promise<void>) | undefined;
before(async () => ({ cloud, stateDir, close } = await cloudWithSimNode()));
after(() => close?.());

const a = () => cloud.admin;
const get = (name: string) => a().call('getVm', { params: { name } });
const inState = (name: string, state: string) => until(`${name} ${state}`, async () => ((await get(name)).state === state ? true : undefined));
const memoryFile = (id: string) => join(stateDir, 'vms', id, 'memory.state');
const used = async () => (await a().call('getNode', { params: { name: 'n1' } })).allocated;

test('suspend: running -> suspending -> suspended with its memory state on the node; resume: back to running, the same identity', async () => {
  const vm = await a().call('createVm', { body: { name: 'nap', image: 'img', memory: '256M' } });
  await inState('nap', 'running');
  const s = await a().call('suspendVm', { params: { name: 'nap' }, body: {} });
  assert.equal(s.power, 'suspended');
  assert.equal(s.state, 'suspending');
  assert.equal(s.released, false);
  await inState('nap', 'suspended');
  assert.ok(existsSync(memoryFile(vm.id)), 'the memory state is in the VM directory on its node');
  assert.equal((await used()).memoryBytes, 256 * 1024 * 1024, 'without --release its memory stays held');

  const r = await a().call('resumeVm', { params: { name: 'nap' } });
  assert.equal(r.power, 'running');
  await inState('nap', 'running');
  const back = await get('nap');
  assert.deepEqual([back.id, back.mac, back.ip, back.node], [vm.id, vm.mac, vm.ip, vm.node], 'same identity');
  assert.equal(existsSync(memoryFile(vm.id)), false, 'the state file goes once it runs again');
  const events = (await a().call('listEvents', { query: { resource: 'vm', name: 'nap' } })).items.map((e) => e.action);
  assert.ok(events.includes('suspend') && events.includes('resume'), events.join(','));
});

test('refusals name the state: suspending a stopped VM, resuming a running one; a suspended VM is not cold-started or restored', async () => {
  await a().call('createVm', { body: { name: 'idle', image: 'img' } });
  await inState('idle', 'running');
  await rejects(a().call('resumeVm', { params: { name: 'idle' } }), 409, 'name', /vm idle is running: only a suspended VM can be resumed/);
  await a().call('stopVm', { params: { name: 'idle' } });
  await inState('idle', 'stopped');
  await rejects(a().call('suspendVm', { params: { name: 'idle' }, body: {} }), 409, 'name', /vm idle is stopped: only a running VM can be suspended/);
  await rejects(a().call('suspendVm', { params: { name: 'ghost' }, body: {} }), 404, 'name');
  await rejects(a().call('suspendVm', { params: { name: 'idle' }, body: { release: 'yes' } as never }), 400, 'release');

  await a().call('startVm', { params: { name: 'idle' } });
  await inState('idle', 'running');
  await a().call('suspendVm', { params: { name: 'idle' }, body: {} });
  await inState('idle', 'suspended');
  await rejects(a().call('suspendVm', { params: { name: 'idle' }, body: {} }), 409, 'name', /is suspended/);
  await rejects(a().call('startVm', { params: { name: 'idle' } }), 409, 'name', /vm resume idle/);
  await rejects(a().call('restartVm', { params: { name: 'idle' } }), 409, 'name', /vm resume idle/);
  await rejects(a().call('reinitVm', { params: { name: 'idle' } }), 409, 'name', /suspended: resume it or stop it/);
  assert.equal((await get('idle')).state, 'suspended', 'nothing changed');

  // `vm stop` of a suspended VM discards its memory state: it is stopped, and a start boots it cold.
  const id = (await get('idle')).id;
  await a().call('stopVm', { params: { name: 'idle' } });
  await inState('idle', 'stopped');
  await until('state discarded', async () => (existsSync(memoryFile(id)) ? undefined : true));
  await rejects(a().call('resumeVm', { params: { name: 'idle' } }), 409, 'name', /is stopped/);
});

test('--release gives the cpus and memory back; a resume that no longer fits on its node is refused naming why, and nothing changes', async () => {
  const before = await used();
  await a().call('createVm', { body: { name: 'lean', image: 'img', memory: '512M', cpus: 2 } });
  await inState('lean', 'running');
  const s = await a().call('suspendVm', { params: { name: 'lean' }, body: { release: true } });
  assert.equal(s.released, true);
  await inState('lean', 'suspended');
  const after = await used();
  assert.equal(after.memoryBytes, before.memoryBytes, 'its memory is released');
  assert.equal(after.cpus, before.cpus, 'its cpus are released');
  assert.ok(after.diskBytes > before.diskBytes, 'its disk stays held (its files stay)');

  // The node fills up meanwhile (a VM made to hold what is left, as if created): the resume cannot fit.
  const db = cloud.cp.services.store.db;
  const node = await a().call('getNode', { params: { name: 'n1' } });
  db.prepare(`UPDATE vms SET memory_bytes = memory_bytes + ? WHERE name = 'nap'`).run(node.capacity!.memoryBytes * 2);
  cloud.cp.services.store.scheduleGen++;
  try {
    await rejects(a().call('resumeVm', { params: { name: 'lean' } }), 422, 'name', /suspended with --release and no longer fits on node n1/);
    const still = await get('lean');
    assert.deepEqual([still.power, still.state, still.released], ['suspended', 'suspended', true]);
  } finally {
    db.prepare(`UPDATE vms SET memory_bytes = memory_bytes - ? WHERE name = 'nap'`).run(node.capacity!.memoryBytes * 2);
    cloud.cp.services.store.scheduleGen++;
  }
  const r = await a().call('resumeVm', { params: { name: 'lean' } });
  assert.equal(r.released, false);
  await inState('lean', 'running');
  assert.deepEqual(await used(), { ...after, cpus: after.cpus + 2, memoryBytes: after.memoryBytes + 512 * 1024 * 1024 });
});

test('the CLI (built): vm suspend --release and vm resume, with --json', async () => {
  const env = { ...process.env, XDG_CONFIG_HOME: join(tmpdir(), 'butter-suspend-cli-none'), BUTTER_URL: cloud.url, BUTTER_TOKEN: cloud.cp.adminToken! };
  const s = await runButter(['vm', 'suspend', 'nap', '--release', '--json'], env);
  assert.equal(s.code, 0, s.stderr);
  const sv = JSON.parse(s.stdout) as { state: string; released: boolean };
  assert.deepEqual([sv.state, sv.released], ['suspended', true], 'waits until its node has saved it');
  const r = await runButter(['vm', 'resume', 'nap', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { state: string }).state, 'running');
  const bad = await runButter(['vm', 'resume', 'nap'], env);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /vm nap is running: only a suspended VM can be resumed/);
});

test("a suspended VM on a lost node is reported so, and cannot be resumed until the node returns; an evacuation stops it (its memory state stays there)", async () => {
  const n2 = await fakeNode(cloud, 'n2');
  void n2;
  await a().call('createVm', { body: { name: 'far', image: 'img', node: 'n2' } });
  // The fake node reports nothing: say it ran (as its report would have), then suspend it.
  cloud.cp.services.store.db.prepare(`UPDATE vms SET state = 'running' WHERE name = 'far'`).run();
  await a().call('suspendVm', { params: { name: 'far' }, body: {} });
  cloud.cp.services.nodes.sweep(new Date(Date.now() + HEARTBEAT_TIMEOUT_MS + 1_000));
  const far = await get('far');
  assert.equal(far.state, 'unknown');
  assert.match(far.reason ?? '', /suspended on node n2, which stopped reporting: its memory state is lost until the node returns/);
  await rejects(a().call('resumeVm', { params: { name: 'far' } }), 409, 'name', /memory state is on node n2, which is unreachable/);
  await until('n1 ready again', async () => ((await a().call('getNode', { params: { name: 'n1' } })).state === 'ready' ? true : undefined));
  const moved = await a().call('evacuateNode', { params: { name: 'n2' }, body: { confirm: true } });
  assert.deepEqual(moved.moved.map((m) => m.vm), ['far'], JSON.stringify(moved));
  const after = await get('far');
  assert.equal(after.power, 'stopped', 'recreated from its image, stopped: its memory state is lost with n2');
  const ev = (await a().call('listEvents', { query: { resource: 'vm', name: 'far' } })).items.map((e) => e.message).join('\n');
  assert.match(ev, /its memory state is lost with its node/);
});
