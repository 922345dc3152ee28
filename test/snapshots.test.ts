/**
 * Disk snapshots, restore, reinit and clones (issue 16) through the real control plane and a
 * real agent with the simulated driver (files only): the node takes what is asked and reports
 * it, the API refuses bad input naming the field with nothing left behind (no row, no file),
 * and the snapshots of a node that is lost are shown `lost`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HEARTBEAT_TIMEOUT_MS } from '../src/server/nodes.ts';
import { cloudWithSimNode, fakeNode, rejects, runButter, until, type TestCloud } from './helpers.ts';
import { tmpdir } from 'node:os';

let cloud: TestCloud;
let stateDir: string;
let close: (() => Promise<void>) | undefined;
before(async () => ({ cloud, stateDir, close } = await cloudWithSimNode()));
after(() => close?.());

const a = () => cloud.admin;
const snaps = async (vm: string) => (await a().call('listSnapshots', { params: { name: vm } })).items;
const snapFiles = (vmId: string) => {
  const dir = join(stateDir, 'vms', vmId, 'snapshots');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
};
const rows = () => (cloud.cp.services.store.db.prepare('SELECT COUNT(*) AS n FROM snapshots').get() as { n: number }).n;
const running = (name: string) => until(`${name} running`, async () => ((await a().call('getVm', { params: { name } })).state === 'running' ? true : undefined));
const ready = (vm: string, snap: string) => until(`${vm}/${snap} ready`, async () => ((await snaps(vm)).find((s) => s.name === snap)?.state === 'ready' ? true : undefined));

test('a VM gets its initial snapshot at its first boot; a snapshot is taken, listed, restored, and one nothing stands on is deleted on the node too', async () => {
  const vm = await a().call('createVm', { body: { name: 'web', image: 'img' } });
  await running('web');
  await ready('web', 'initial');
  assert.deepEqual(snapFiles(vm.id).length, 1);
  const s1 = await a().call('createSnapshot', { params: { name: 'web' }, body: {} });
  assert.equal(s1.name, 'snap-1');
  assert.equal(s1.state, 'pending');
  assert.equal(s1.parent, 'initial');
  await ready('web', 'snap-1');
  const s2 = await a().call('createSnapshot', { params: { name: 'web' }, body: { name: 'before-upgrade' } });
  await ready('web', s2.name);
  const list = await snaps('web');
  assert.deepEqual(list.map((s) => [s.name, s.parent, s.current]), [['initial', null, false], ['snap-1', 'initial', false], ['before-upgrade', 'snap-1', true]]);
  assert.equal(snapFiles(vm.id).length, 3);
  // before-upgrade stands on snap-1: merging snap-1 into a snapshot of the running VM needs it stopped (see the merge test).
  await rejects(a().call('deleteSnapshot', { params: { name: 'web', snap: 'snap-1' } }), 409, 'snap', /before-upgrade .*stands on snapshot snap-1: stop the VM/);
  await rejects(a().call('deleteSnapshot', { params: { name: 'web', snap: 'initial' } }), 409, 'snap', /reinit/);
  // Restore snap-1: the VM restarts from it; before-upgrade then backs nothing and can go, on the node too.
  const restored = await a().call('restoreSnapshot', { params: { name: 'web', snap: 'snap-1' } });
  assert.equal(restored.state, 'pending');
  await running('web');
  assert.equal((await snaps('web')).find((s) => s.current)?.name, 'snap-1');
  await a().call('deleteSnapshot', { params: { name: 'web', snap: 'before-upgrade' } });
  await until('the node deletes its file', async () => (snapFiles(vm.id).includes(`${s2.id}.json`) ? undefined : true));
  assert.deepEqual((await snaps('web')).map((s) => s.name), ['initial', 'snap-1']);
  // reinit: restarts from initial.
  await a().call('reinitVm', { params: { name: 'web' } });
  await running('web');
  assert.equal((await snaps('web')).find((s) => s.current)?.name, 'initial');
});

test('deleting a snapshot something stands on merges it: the current disk and a later snapshot then stand on its parent, on the node too', async () => {
  const vm = await a().call('createVm', { body: { name: 'mg', image: 'img' } });
  await running('mg');
  await ready('mg', 'initial');
  const layer = (file: string) => (JSON.parse(readFileSync(join(stateDir, 'vms', vm.id, file), 'utf8')) as { backing: string | null }).backing;
  const id = async (n: string) => (await snaps('mg')).find((s) => s.name === n)!.id;
  await a().call('createSnapshot', { params: { name: 'mg' }, body: { name: 'm1' } });
  await ready('mg', 'm1');
  await a().call('createSnapshot', { params: { name: 'mg' }, body: { name: 'm2' } });
  await ready('mg', 'm2');
  const [initial, m1, m2] = [await id('initial'), await id('m1'), await id('m2')];
  // The running VM's disk stands on m2: deleting m2 merges it into the disk (QEMU: block-stream).
  await a().call('deleteSnapshot', { params: { name: 'mg', snap: 'm2' } });
  await until('m2 merged away on the node', async () => (snapFiles(vm.id).includes(`${m2}.json`) ? undefined : true));
  assert.equal(layer('disk.json'), `${vm.id}/${m1}`, 'the disk stands on m2\'s parent now');
  assert.deepEqual((await snaps('mg')).map((s) => [s.name, s.parent, s.current]), [['initial', null, false], ['m1', 'initial', true]]);
  // m3 on m1: merging m1 into a snapshot (a frozen layer) of the running VM is refused...
  await a().call('createSnapshot', { params: { name: 'mg' }, body: { name: 'm3' } });
  await ready('mg', 'm3');
  await rejects(a().call('deleteSnapshot', { params: { name: 'mg', snap: 'm1' } }), 409, 'snap', /m3 of vm mg stands on snapshot m1: stop the VM/);
  // ...and done once it is stopped (QEMU: qemu-img rebase of m3's layer onto initial).
  await a().call('stopVm', { params: { name: 'mg' } });
  await until('mg stopped', async () => ((await a().call('getVm', { params: { name: 'mg' } })).state === 'stopped' ? true : undefined));
  await a().call('deleteSnapshot', { params: { name: 'mg', snap: 'm1' } });
  await until('m1 merged away on the node', async () => (snapFiles(vm.id).includes(`${m1}.json`) ? undefined : true));
  assert.equal(layer(`snapshots/${await id('m3')}.json`), `${vm.id}/${initial}`);
  assert.deepEqual((await snaps('mg')).map((s) => [s.name, s.parent]), [['initial', null], ['m3', 'initial']]);
  // initial stays refused: reinit needs it.
  await rejects(a().call('deleteSnapshot', { params: { name: 'mg', snap: 'initial' } }), 409, 'snap', /reinit/);
  await a().call('deleteVm', { params: { name: 'mg' } });
  await until('mg gone', async () => ((await a().call('listVms', {})).items.some((v) => v.name === 'mg') ? undefined : true));
});

test('the initial snapshot, made with the disk, settles quietly: no audit event and no wake-up of its node (one per VM created would cost 10,000 of each)', async () => {
  const desiredRev = () => (cloud.cp.services.store.db.prepare('SELECT desired_rev FROM nodes WHERE name = ?').get('n1') as { desired_rev: number }).desired_rev;
  await a().call('createVm', { body: { name: 'quiet', image: 'img' } });
  const rev = desiredRev();
  await running('quiet');
  await ready('quiet', 'initial');
  assert.equal(desiredRev(), rev, "the node's desired state did not change");
  const events = cloud.cp.services.store.db.prepare(`SELECT message FROM events WHERE resource = 'vm' AND name = 'quiet'`).all() as { message: string }[];
  assert.deepEqual(events.filter((e) => /snapshot/.test(e.message)), []);
  await a().call('deleteVm', { params: { name: 'quiet' } });
  await until('quiet gone', async () => ((await a().call('listVms', {})).items.some((v) => v.name === 'quiet') ? undefined : true));
});

test('bad snapshot input is refused naming the field, and leaves no row and no file', async () => {
  const n0 = rows();
  await rejects(a().call('createSnapshot', { params: { name: 'web' }, body: { name: 'Bad_Name' } }), 400, 'name', /DNS label/);
  await rejects(a().call('createSnapshot', { params: { name: 'web' }, body: { name: 'initial' } }), 400, 'name', /must not be "initial"/);
  await rejects(a().call('createSnapshot', { params: { name: 'web' }, body: { name: 'snap-1' } }), 409, 'name', /already has a snapshot snap-1/);
  await rejects(a().call('createSnapshot', { params: { name: 'nope' }, body: {} }), 404, 'name');
  // A snapshot of another VM is not this VM's: not found, naming the snapshot.
  await a().call('createVm', { body: { name: 'other', image: 'img' } });
  await running('other');
  await a().call('createSnapshot', { params: { name: 'other' }, body: { name: 'theirs' } });
  await ready('other', 'theirs');
  const n1 = rows();
  await rejects(a().call('restoreSnapshot', { params: { name: 'web', snap: 'theirs' } }), 404, 'snap', /vm web has no snapshot theirs/);
  await rejects(a().call('cloneVm', { params: { name: 'web' }, body: { name: 'c1', snapshot: 'theirs' } }), 404, 'snapshot');
  await rejects(a().call('cloneVm', { params: { name: 'web' }, body: { name: 'c1', node: 'elsewhere' } }), 404, 'node', /node elsewhere not found/);
  assert.equal(rows(), n1, 'no snapshot row from refused requests');
  assert.equal((await a().call('listVms', {})).items.some((v) => v.name === 'c1'), false);
  assert.ok(n1 > n0);
});

test('restoring a snapshot while it is pending is refused', async () => {
  // Held pending by writing the row as the API does, with no node to take it yet: a second
  // snapshot while one is pending is refused too.
  const db = cloud.cp.services.store.db;
  const vm = db.prepare(`SELECT id FROM vms WHERE name = 'other'`).get() as { id: string };
  db.prepare(`INSERT INTO snapshots (id, vm_id, name, node, state, parent, created_at, updated_at) VALUES ('held0', ?, 'held', 'n1', 'pending', NULL, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`).run(vm.id);
  try {
    await rejects(a().call('restoreSnapshot', { params: { name: 'other', snap: 'held' } }), 409, 'snap', /pending/);
    await rejects(a().call('createSnapshot', { params: { name: 'other' }, body: {} }), 409, 'name', /held .*still pending/);
  } finally {
    db.prepare(`DELETE FROM snapshots WHERE id = 'held0'`).run();
  }
});

test('a clone is a new VM (own name, MAC, address, id) whose disk stands on the snapshot; the source and the snapshot cannot go while it exists', async () => {
  const src = await a().call('getVm', { params: { name: 'web' } });
  const clone = await a().call('cloneVm', { params: { name: 'web' }, body: { name: 'web2', snapshot: 'snap-1' } });
  assert.equal(clone.node, 'n1');
  assert.notEqual(clone.id, src.id);
  assert.notEqual(clone.mac, src.mac);
  assert.notEqual(clone.ip, src.ip);
  await running('web2');
  await ready('web2', 'initial');
  const snap1 = (await snaps('web')).find((s) => s.name === 'snap-1')!;
  const disk = JSON.parse(readFileSync(join(stateDir, 'vms', clone.id, 'snapshots', `${(await snaps('web2'))[0]!.id}.json`), 'utf8')) as { backing: string };
  assert.equal(disk.backing, `${src.id}/${snap1.id}`, "the clone's initial point stands on web's snap-1");
  await rejects(a().call('deleteSnapshot', { params: { name: 'web', snap: 'snap-1' } }), 409, 'snap', /web2 is a clone/);
  await rejects(a().call('deleteVm', { params: { name: 'web' } }), 409, 'name', /web2 is a clone/);
  // Without --snapshot: one is taken now (clone-NAME), then the clone starts on it.
  const c3 = await a().call('cloneVm', { params: { name: 'web' }, body: { name: 'web3' } });
  await running('web3');
  assert.ok((await snaps('web')).some((s) => s.name === 'clone-web3' && s.state === 'ready'));
  assert.notEqual(c3.ip, clone.ip);
});

test('cloning onto a node without room is refused naming node, with nothing left behind', async () => {
  const n0 = rows();
  const vms0 = (await a().call('listVms', {})).items.length;
  // n1 (the sim agent) reports its host's real capacity; ask for more memory than that by resizing the source first.
  const db = cloud.cp.services.store.db;
  db.prepare(`UPDATE vms SET memory_bytes = 1099511627776 WHERE name = 'other'`).run();
  cloud.cp.services.store.scheduleGen++;
  try {
    await rejects(a().call('cloneVm', { params: { name: 'other' }, body: { name: 'huge', snapshot: 'theirs' } }), 422, 'node', /no node can take/);
    await rejects(a().call('cloneVm', { params: { name: 'other' }, body: { name: 'huge' } }), 422, 'node', /no node can take/);
  } finally {
    db.prepare(`UPDATE vms SET memory_bytes = 536870912 WHERE name = 'other'`).run();
    cloud.cp.services.store.scheduleGen++;
  }
  assert.equal(rows(), n0, 'no snapshot row (not even the implicit clone-huge)');
  assert.equal((await a().call('listVms', {})).items.length, vms0);
});

test('the CLI (built): vm snapshot, list, restore with options after the subcommand, rm refusal, all with --json', async () => {
  const env = { ...process.env, XDG_CONFIG_HOME: join(tmpdir(), 'butter-snap-cli-none'), BUTTER_URL: cloud.url, BUTTER_TOKEN: cloud.cp.adminToken! };
  const run = async (...args: string[]) => {
    const r = await runButter(args, env);
    const out = r.stdout.trim();
    return { ...r, json: r.code === 0 && (out.startsWith('{') || out.startsWith('[')) ? (JSON.parse(out) as unknown) : undefined };
  };
  const took = await run('vm', 'snapshot', 'other', '--name', 'cli-1', '--json');
  assert.equal(took.code, 0, took.stderr);
  assert.equal((took.json as { state: string }).state, 'ready', 'waits until its node has taken it');
  // `--json` after the subcommand, though `vm snapshot` itself has one (commander gives it to the first that knows it).
  const list = await run('vm', 'snapshot', 'list', 'other', '--json');
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual((list.json as { name: string }[]).map((x) => x.name), ['initial', 'theirs', 'cli-1']);
  assert.deepEqual(((await run('vm', 'snapshots', 'other', '--json')).json as { name: string }[]).map((x) => x.name), ['initial', 'theirs', 'cli-1']);
  const restore = await run('vm', 'snapshot', 'restore', 'other', 'theirs', '--no-wait', '--json');
  assert.equal(restore.code, 0, restore.stderr);
  assert.equal((restore.json as { state: string }).state, 'pending', '--no-wait after the subcommand: no wait');
  const refused = await run('vm', 'snapshot', 'rm', 'other', 'initial', '--json');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /reinit/);
  await running('other');
  const rm = await run('vm', 'snapshot', 'rm', 'other', 'cli-1', '--json');
  assert.equal(rm.code, 0, rm.stderr);
  assert.deepEqual(rm.json, { vm: 'other', snapshot: 'cli-1', deleted: true });
  const mem = await run('vm', 'snapshot', 'other', '--name', 'cli-m', '--memory');
  assert.equal(mem.code, 0, mem.stderr);
  assert.match(mem.stdout, /^memory snapshot cli-m of vm other is ready \(guest paused 0 ms, \d+B of memory state\)$/m);
  const listed = await run('vm', 'snapshot', 'list', 'other');
  assert.match(listed.stdout, /MEMORY/);
});

test('a memory snapshot (--memory): only of a running VM; its state file is kept with it (0600), its restore resumes the VM (no boot), its delete removes the state too', async () => {
  const vm = await a().call('createVm', { body: { name: 'mem', image: 'img', cpus: 1, memory: '256M' } });
  await running('mem');
  await ready('mem', 'initial');
  const s = await a().call('createSnapshot', { params: { name: 'mem' }, body: { name: 'warm', memory: true } });
  assert.deepEqual([s.state, s.memory, s.memoryBytes], ['pending', true, null]);
  await ready('mem', 'warm');
  const taken = (await snaps('mem')).find((x) => x.name === 'warm')!;
  assert.ok(taken.memory && taken.memoryBytes !== null && taken.memoryBytes > 0, `its state's bytes are reported: ${JSON.stringify(taken)}`);
  assert.equal((await snaps('mem')).find((x) => x.name === 'initial')!.memory, false);
  const state = join(stateDir, 'vms', vm.id, 'snapshots', `${s.id}.memory`);
  assert.ok(existsSync(state), 'the state file lives with the snapshot');
  assert.equal(statSync(state).mode & 0o777, 0o600);
  const events = (await a().call('listEvents', { query: { resource: 'vm', name: 'mem' } })).items;
  assert.ok(events.some((e) => e.action === 'snapshot.memory' && /memory snapshot warm ready/.test(e.message)), JSON.stringify(events.map((e) => [e.action, e.message])));

  // The restore resumes the same VM from that state: a launch from it, not a boot.
  const log = join(stateDir, 'vms', vm.id, 'console.log');
  const boots = () => readFileSync(log, 'utf8').split('\n').filter((l) => / booted: /.test(l)).length;
  const booted = boots();
  const restored = await a().call('restoreSnapshot', { params: { name: 'mem', snap: 'warm' } });
  assert.equal(restored.id, vm.id, 'the same VM');
  // (A heartbeat sent before the node saw the restore may still say `running`: wait for the node's doing.)
  const resumedLine = new RegExp(`resumed from the memory state of snapshot ${s.id} of ${vm.id}: no boot`);
  await until('mem resumed from the snapshot', async () => (resumedLine.test(readFileSync(log, 'utf8')) ? true : undefined));
  await running('mem');
  assert.equal(boots(), booted, 'not booted again');
  assert.equal((await snaps('mem')).find((x) => x.current)?.name, 'warm');
  assert.ok(existsSync(state), 'kept: it can be restored again');

  // Refused of a VM that is not running, naming the VM and its state; nothing is left of it.
  await a().call('stopVm', { params: { name: 'mem' } });
  await until('mem stopped', async () => ((await a().call('getVm', { params: { name: 'mem' } })).state === 'stopped' ? true : undefined));
  const n = rows();
  await rejects(a().call('createSnapshot', { params: { name: 'mem' }, body: { memory: true } }), 409, 'name', /vm mem is stopped: a memory snapshot is of a running guest/);
  assert.equal(rows(), n, 'no row');
  // A VM resized since cannot take its state (the devices differ): refused, naming the snapshot.
  await a().call('resizeVm', { params: { name: 'mem' }, body: { cpus: 2 } });
  await a().call('startVm', { params: { name: 'mem' } });
  await running('mem');
  await rejects(a().call('restoreSnapshot', { params: { name: 'mem', snap: 'warm' } }), 409, 'snap', /taken with 1 vCPU and 256M of memory; vm mem now has 2 vCPU/);

  // Deleted (once the disk stands elsewhere): its state goes from the node with it.
  await a().call('reinitVm', { params: { name: 'mem' } });
  await running('mem');
  await a().call('deleteSnapshot', { params: { name: 'mem', snap: 'warm' } });
  await until('the node deletes its files', async () => (snapFiles(vm.id).some((f) => f.startsWith(s.id)) ? undefined : true));
  assert.equal(existsSync(state), false);
  await a().call('deleteVm', { params: { name: 'mem' } });
});

test("a lost node's snapshots are reported lost, not silently gone", async () => {
  const b = await fakeNode(cloud, 'n2');
  void b;
  await a().call('createVm', { body: { name: 'far', image: 'img', node: 'n2' } });
  // Ready with the create, though the fake node never reports the VM: the node makes it with the disk, before anything can use it.
  assert.deepEqual((await snaps('far')).map((x) => [x.name, x.state]), [['initial', 'ready']]);
  // Only a clone must wait for that disk: it stands on the file.
  await rejects(a().call('cloneVm', { params: { name: 'far' }, body: { name: 'far2', snapshot: 'initial' } }), 409, 'name', /has not made .*its disk/);
  // Then the node goes silent.
  cloud.cp.services.nodes.sweep(new Date(Date.now() + HEARTBEAT_TIMEOUT_MS + 1_000));
  const s = await snaps('far');
  assert.deepEqual(s.map((x) => [x.name, x.state]), [['initial', 'lost']]);
  assert.match(s[0]!.reason ?? '', /node n2 is unreachable/);
  await rejects(a().call('createSnapshot', { params: { name: 'far' }, body: {} }), 409, 'name', /unreachable/);
  // Evacuated elsewhere (to n1, once its agent's next heartbeat has it ready again): the files stay on n2, and the rows say so for good.
  await until('n1 ready again', async () => ((await a().call('getNode', { params: { name: 'n1' } })).state === 'ready' ? true : undefined));
  const moved = await a().call('evacuateNode', { params: { name: 'n2' }, body: { confirm: true } });
  assert.deepEqual(moved.moved.map((m) => m.vm), ['far'], JSON.stringify(moved));
  const after = await snaps('far');
  assert.equal(after[0]!.state, 'lost');
  assert.match(after[0]!.reason ?? '', /left on node n2 \(evacuate\)/);
});
