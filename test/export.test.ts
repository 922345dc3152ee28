/**
 * Images made from a VM's snapshot and clones onto another node (issue 16), through the real
 * control plane and real agents with the simulated driver: the VM's node flattens the snapshot
 * and uploads it over its own node endpoint; the image is `pending`, then `ready` (or `failed`
 * with the reason); a clone elsewhere waits for that copy and stands on it. Refusals name the
 * field and leave nothing (no row, no blob, no temp file); the endpoint refuses other nodes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import type { Agent } from '../src/agent/agent.ts';
import { HEARTBEAT_TIMEOUT_MS } from '../src/server/nodes.ts';
import { renderDesired } from '../src/server/desired-state.ts';
import type { NodeRow } from '../src/server/store/rows.ts';
import { ButterError, Client } from '../src/sdk/client.ts';
import { fakeNode, rejects, runButter, simAgent, startTestCloud, until, uploadImage, type TestCloud } from './helpers.ts';
import { tmpdir } from 'node:os';

let cloud: TestCloud;
const agents: { agent: Agent; stateDir: string }[] = [];
before(async () => {
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'img');
  for (const n of ['n1', 'n2']) {
    const { agent, stateDir } = await simAgent(cloud, n);
    await agent.start();
    agents.push({ agent, stateDir });
  }
});
after(async () => {
  for (const a of agents) await a.agent.stop();
  await cloud.close();
  for (const a of agents) rmSync(a.stateDir, { recursive: true, force: true });
});

const a = () => cloud.admin;
const db = () => cloud.cp.services.store.db;
const count = (table: string) => (db().prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
const running = (name: string) => until(`${name} running`, async () => ((await a().call('getVm', { params: { name } })).state === 'running' ? true : undefined));
const snaps = async (vm: string) => (await a().call('listSnapshots', { params: { name: vm } })).items;
const snapReady = (vm: string, snap: string) => until(`${vm}/${snap} ready`, async () => ((await snaps(vm)).find((s) => s.name === snap)?.state === 'ready' ? true : undefined));
const image = (name: string) => a().call('getImage', { params: { name } });
const settled = (name: string) => until(`image ${name} settled`, async () => ((await image(name)).status !== 'pending' ? image(name) : undefined));
const blobText = async (sha: string) => Buffer.from(await new Response((await a().downloadBlob(sha)).body).arrayBuffer()).toString();
const tempFiles = (i: number) => {
  const d = join(agents[i]!.stateDir, 'exports');
  return existsSync(d) ? readdirSync(d) : [];
};

test('image create --from-vm: pending, then a ready disk image of the snapshot (flattened by its node), which makes new VMs', async () => {
  const web = await a().call('createVm', { body: { name: 'web', image: 'img', node: 'n1' } });
  await running('web');
  const s1 = await a().call('createSnapshot', { params: { name: 'web' }, body: { name: 's1' } });
  await snapReady('web', 's1');
  const made = await a().call('createImageFromVm', { body: { name: 'web-img', vm: 'web', snapshot: 's1' } });
  assert.equal(made.status, 'pending');
  assert.deepEqual(made.export, { vm: 'web', snapshot: 's1', node: 'n1', error: null });
  assert.ok((await a().call('listImages', {})).items.some((i) => i.name === 'web-img' && i.status === 'pending'));
  const img = await settled('web-img');
  assert.equal(img.status, 'ready', JSON.stringify(img));
  assert.equal(img.export, undefined);
  // The bytes are the node's flattening of web's chain at s1 (the sim driver writes the chain it read).
  const text = await blobText(img.sha256!);
  assert.match(text, new RegExp(`"${web.id}/${s1.id}"`));
  assert.equal(createHash('sha256').update(text).digest('hex'), img.sha256);
  assert.equal(count('exports'), 0, 'an image export leaves no row once the image exists');
  assert.deepEqual(tempFiles(0), [], 'no temp file on the node');
  // An ordinary image now: a VM of it anywhere.
  await a().call('createVm', { body: { name: 'from-img', image: 'web-img', node: 'n2' } });
  await running('from-img');
  // Without --snapshot one is taken now, `image-NAME`.
  const second = await a().call('createImageFromVm', { body: { name: 'web-now', vm: 'web' } });
  assert.equal(second.export?.snapshot, 'image-web-now');
  assert.equal((await settled('web-now')).status, 'ready');
  assert.ok((await snaps('web')).some((s) => s.name === 'image-web-now' && s.state === 'ready'));
});

test("a VM of a kernel image makes a kernel image: the same kernel, initrd and command line, its disk the root disk", async () => {
  const up = async (text: string) => (await a().uploadBlob(Readable.from([Buffer.from(text)]))).sha256;
  const [kernel, initrd, root] = [await up('a kernel'), await up('an initrd'), await up('a root file system'.repeat(50))];
  await a().call('createImage', { body: { name: 'kimg', kind: 'kernel', kernel, initrd, rootDisk: root, cmdline: 'console=ttyS0 x=1' } });
  await a().call('createVm', { body: { name: 'kvm1', image: 'kimg', node: 'n1' } });
  await running('kvm1');
  await a().call('createImageFromVm', { body: { name: 'kimg-2', vm: 'kvm1' } });
  const img = await settled('kimg-2');
  assert.equal(img.status, 'ready', JSON.stringify(img));
  assert.equal(img.kind, 'kernel');
  assert.equal(img.files.kernel?.sha256, kernel);
  assert.equal(img.files.initrd?.sha256, initrd);
  assert.notEqual(img.files.rootDisk?.sha256, root, 'its root disk is the export, not the old one');
  assert.equal(img.cmdline, 'console=ttyS0 x=1');
});

test('bad --from-vm input is refused naming the field, with nothing made (no export, no snapshot, no image)', async () => {
  const before = { exports: count('exports'), snapshots: count('snapshots'), images: (await a().call('listImages', {})).items.length, blobs: count('blobs') };
  await rejects(a().call('createImageFromVm', { body: { name: 'x1', vm: 'nope' } }), 404, 'vm');
  await rejects(a().call('createImageFromVm', { body: { name: 'x1', vm: 'web', snapshot: 'nope' } }), 404, 'snapshot');
  await rejects(a().call('createImageFromVm', { body: { name: 'img', vm: 'web' } }), 409, 'name', /already exists/);
  await rejects(a().call('createImageFromVm', { body: { name: 'Bad_Name', vm: 'web' } }), 400, 'name');
  await rejects(a().call('createImageFromVm', { body: { name: 'x1', vm: 'web', snapshot: 's1', extra: 1 } as never }), 400);
  assert.deepEqual({ exports: count('exports'), snapshots: count('snapshots'), images: (await a().call('listImages', {})).items.length, blobs: count('blobs') }, before);
});

test('an export that fails on its node leaves the image failed with the reason, no blob and no temp file; deleting it clears it', async () => {
  const blobs = count('blobs');
  // The node cannot write its temporary file (a file stands where its exports directory goes).
  const dir = join(agents[0]!.stateDir, 'exports');
  rmSync(dir, { recursive: true, force: true });
  writeFileSync(dir, 'in the way');
  try {
    await a().call('createImageFromVm', { body: { name: 'broken', vm: 'web', snapshot: 's1' } });
    const img = await settled('broken');
    assert.equal(img.status, 'failed');
    assert.match(img.export?.error ?? '', /EEXIST/);
  } finally {
    rmSync(dir, { force: true });
  }
  await rejects(a().call('createVm', { body: { name: 'nope', image: 'broken' } }), 409, 'image', /could not be made/);
  assert.equal(count('blobs'), blobs);
  assert.deepEqual(tempFiles(0), []);
  await a().call('deleteImage', { params: { name: 'broken' } });
  await rejects(image('broken'), 404);
  assert.equal(count('exports'), 0);
});

test("the node endpoint takes an export's bytes from its own node only; a lost node's export fails", async () => {
  // f1 is a node that never exports (a fake one): its export stays pending for the test to poke at.
  const f1 = await fakeNode(cloud, 'f1');
  const f2 = await fakeNode(cloud, 'f2');
  const vm = await a().call('createVm', { body: { name: 'far', image: 'img', node: 'f1' } });
  const [initial] = await snaps('far');
  await f1.call('nodeReport', { params: { name: 'f1' }, body: { capacity: { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [{ id: vm.id, state: 'running', snapshots: [{ id: initial!.id, state: 'ready', sizeBytes: 1 }] }] } });
  const img = await a().call('createImageFromVm', { body: { name: 'planted', vm: 'far', snapshot: 'initial' } });
  assert.equal(img.status, 'pending');
  const exp = db().prepare(`SELECT id FROM exports WHERE image = 'planted'`).get() as { id: string };
  // f1's desired state lists it.
  const desired = await f1.call('nodeDesired', { params: { name: 'f1' }, query: {} });
  assert.deepEqual(('exports' in desired ? desired.exports : undefined)?.map((e) => e.id), [exp.id]);
  const bytes = Buffer.from('planted bytes');
  const sha = createHash('sha256').update(bytes).digest('hex');
  const blobs = count('blobs');
  const put = (c: Client, node: string, id: string, digest = sha) => c.uploadExport(node, id, digest, Readable.from([bytes]));
  // Another node: not through f1's path (403), not by calling it its own (404), not for an id that is no export.
  await rejects(put(f2, 'f1', exp.id), 403);
  await rejects(put(f2, 'f2', exp.id), 404, 'id');
  await rejects(put(f1, 'f1', 'nosuchexport'), 404, 'id');
  await rejects(f2.call('nodeExportFailed', { params: { name: 'f2', id: exp.id }, body: { reason: 'x' } }), 404, 'id');
  // An operator token is no node.
  const op = await a().call('createToken', { body: { role: 'operator' } });
  await rejects(put(new Client({ url: cloud.url, token: op.secret }), 'f1', exp.id), 403);
  assert.equal(count('blobs'), blobs, 'no blob planted');
  assert.equal((await image('planted')).status, 'pending');
  // f1 goes silent: its export fails, saying why.
  cloud.cp.services.nodes.sweep(new Date(Date.now() + HEARTBEAT_TIMEOUT_MS + 5_000));
  const failed = await image('planted');
  assert.equal(failed.status, 'failed');
  assert.match(failed.export?.error ?? '', /node f1 stopped reporting/);
  // Too late now, even from f1 itself.
  await rejects(put(f1, 'f1', exp.id), 409, 'id');
  assert.equal(count('blobs'), blobs);
  await a().call('deleteImage', { params: { name: 'planted' } });
  void f2;
});

test('vm clone --node: the clone waits for a copy of the snapshot, then stands on it on the other node; the copy goes with the clone', async () => {
  await until('n1 and n2 ready', async () => ((await a().call('listNodes', {})).items.filter((n) => ['n1', 'n2'].includes(n.name) && n.state === 'ready').length === 2 ? true : undefined));
  const web = await a().call('createVm', { body: { name: 'solo', image: 'img', node: 'n1' } });
  await running('solo');
  const s1 = await a().call('createSnapshot', { params: { name: 'solo' }, body: { name: 'base' } });
  await snapReady('solo', 'base');
  const clone = await a().call('cloneVm', { params: { name: 'solo' }, body: { name: 'far-clone', snapshot: 'base', node: 'n2' } });
  assert.equal(clone.node, 'n2');
  assert.notEqual(clone.mac, web.mac);
  assert.notEqual(clone.ip, web.ip);
  await running('far-clone');
  // Its initial point (on n2) stands on the copy, a blob whose bytes are web's chain at s1.
  const exp = db().prepare(`SELECT * FROM exports WHERE image IS NULL`).get() as { id: string; sha256: string; state: string };
  assert.equal(exp.state, 'ready');
  const [initial] = await snaps('far-clone');
  const layer = JSON.parse(readFileSync(join(agents[1]!.stateDir, 'vms', clone.id, 'snapshots', `${initial!.id}.json`), 'utf8')) as { backing: string };
  assert.equal(layer.backing, `blob:${exp.sha256}`);
  assert.ok(existsSync(join(agents[1]!.stateDir, 'images', exp.sha256)), "the copy is in n2's image cache, verified");
  assert.match(await blobText(exp.sha256), new RegExp(`"${web.id}/${s1.id}"`));
  // It stands on the copy, not on solo's snapshot: solo can go (a same-node clone would keep it).
  await a().call('deleteVm', { params: { name: 'solo' } });
  await until('solo gone', async () => ((await a().call('listVms', {})).items.some((v) => v.name === 'solo') ? undefined : true));
  assert.equal((await a().call('getVm', { params: { name: 'far-clone' } })).state, 'running');
  // The clone deleted: its copy is collected, the row and the blob.
  await a().call('deleteVm', { params: { name: 'far-clone' } });
  await until('the copy collected', async () => (count('exports') === 0 && !db().prepare(`SELECT 1 FROM blobs WHERE sha256 = ?`).get(exp.sha256) ? true : undefined));
  await rejects(a().downloadBlob(exp.sha256), 404);
});

test('a clone whose copy fails is left in error with the reason; deleting it leaves nothing', async () => {
  const f3 = await fakeNode(cloud, 'f3');
  const vm = await a().call('createVm', { body: { name: 'on-f3', image: 'img', node: 'f3' } });
  const [initial] = await snaps('on-f3');
  await f3.call('nodeReport', { params: { name: 'f3' }, body: { capacity: { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [{ id: vm.id, state: 'running', snapshots: [{ id: initial!.id, state: 'ready', sizeBytes: 1 }] }] } });
  const clone = await a().call('cloneVm', { params: { name: 'on-f3' }, body: { name: 'orphan', snapshot: 'initial', node: 'n2' } });
  assert.equal(clone.state, 'pending');
  assert.match((await a().call('getVm', { params: { name: 'orphan' } })).reason ?? '', /waiting for its base: a copy of vm on-f3's snapshot initial from node f3/);
  const exp = db().prepare(`SELECT id FROM exports WHERE image IS NULL`).get() as { id: string };
  // n2 is not told of it while it waits (nothing to start yet).
  const n2 = () => renderDesired(cloud.cp.services.store, db().prepare(`SELECT * FROM nodes WHERE name = 'n2'`).get() as NodeRow);
  assert.equal(n2().vms.some((v) => v.name === 'orphan'), false);
  await f3.call('nodeExportFailed', { params: { name: 'f3', id: exp.id }, body: { reason: 'disk read error' } });
  const failed = await a().call('getVm', { params: { name: 'orphan' } });
  assert.equal(failed.state, 'error');
  assert.match(failed.reason ?? '', /failed: disk read error/);
  assert.equal(n2().vms.some((v) => v.name === 'orphan'), false, 'nor once it failed');
  await a().call('deleteVm', { params: { name: 'orphan' } });
  await until('orphan gone', async () => ((await a().call('listVms', {})).items.some((v) => v.name === 'orphan') ? undefined : true));
  await until('its export collected', async () => (count('exports') === 0 ? true : undefined));
});

test('vm clone --node onto a node without room is refused naming node, with nothing left behind', async () => {
  const before = { exports: count('exports'), snapshots: count('snapshots'), vms: count('vms') };
  db().prepare(`UPDATE vms SET memory_bytes = 1099511627776 WHERE name = 'web'`).run();
  cloud.cp.services.store.scheduleGen++;
  try {
    await rejects(a().call('cloneVm', { params: { name: 'web' }, body: { name: 'huge', node: 'n2' } }), 422, 'node');
    await rejects(a().call('cloneVm', { params: { name: 'web' }, body: { name: 'huge', snapshot: 'image-web-now', node: 'n2' } }), 422, 'node');
  } finally {
    db().prepare(`UPDATE vms SET memory_bytes = 536870912 WHERE name = 'web'`).run();
    cloud.cp.services.store.scheduleGen++;
  }
  await rejects(a().call('cloneVm', { params: { name: 'web' }, body: { name: 'huge', node: 'nowhere' } }), 404, 'node');
  assert.deepEqual({ exports: count('exports'), snapshots: count('snapshots'), vms: count('vms') }, before);
});
void ButterError;

test('the CLI (built): image create --from-vm waits until ready, with --json; a refusal names the VM', async () => {
  const env = { ...process.env, XDG_CONFIG_HOME: join(tmpdir(), 'butter-export-cli-none'), BUTTER_URL: cloud.url, BUTTER_TOKEN: cloud.cp.adminToken! };
  const made = await runButter(['image', 'create', 'cli-img', '--from-vm', 'web', '--snapshot', 's1', '--json'], env);
  assert.equal(made.code, 0, made.stderr);
  const img = JSON.parse(made.stdout) as { name: string; status: string; sha256: string };
  assert.equal(img.status, 'ready');
  assert.equal((await image('cli-img')).sha256, img.sha256);
  const refused = await runButter(['image', 'create', 'cli-2', '--from-vm', 'ghost', '--json'], env);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /vm ghost not found/);
});
