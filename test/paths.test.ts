// Paths over the real API (issue 14): a control plane with real agents on the simulated
// driver. Add, list, check, remove (by id and by FROM TO PORT); what every node is told (the
// network's paths and service blocks to its hosts, published ports to every node, a node
// hosting no instance too) and that the change wakes their long-polls; every refusal names
// its field and changes nothing (not the table, not the revision, not a node's desired
// revision); roles; a service's paths go with it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent } from '../src/agent/agent.ts';
import type { NodeDesired } from '../src/api/schemas/desired.ts';
import { Butter } from '../src/sdk/connect.ts';
import type { ButterError } from '../src/sdk/client.ts';
import { INTERNET } from '../src/sdk/paths.ts';
import { rejects, simAgent, startTestCloud, until, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let admin: Butter;
let viewer: Butter;
const agents: Agent[] = [];
const dirs: string[] = [];
const NODES = ['n1', 'n2', 'idle'] as const;

const blueprint = (publicIp: boolean) => `image: { name: img }
instance: { memory: 256M, cpus: 1, public_ip: ${publicIp} }
network: { subnetwork_max_instance_count: 4 }
`;

before(async () => {
  cloud = await startTestCloud();
  admin = new Butter({ url: cloud.url, token: cloud.cp.adminToken! });
  viewer = new Butter({ url: cloud.url, token: (await admin.call('createToken', { body: { role: 'viewer' } })).secret });
  await uploadImage(admin, 'img');
  for (const name of NODES) {
    const a = await simAgent(cloud, name);
    dirs.push(a.stateDir);
    await a.agent.start();
    agents.push(a.agent);
  }
  await until('every node ready', async () => ((await admin.call('listNodes', {})).items.every((n) => n.state === 'ready') ? true : undefined));
  // `idle` hosts nothing: it must still publish (every node does).
  await admin.call('cordonNode', { params: { name: 'idle' } });
  await admin.call('createNetwork', { body: { name: 'other', cidr: '10.77.0.0/24' } });
  await admin.call('createService', { body: { network: 'default', name: 'web', blueprint: blueprint(true), count: 2 } });
  await admin.call('createService', { body: { network: 'default', name: 'db', blueprint: blueprint(false), count: 1 } });
  await admin.call('createService', { body: { network: 'other', name: 'far', blueprint: blueprint(true), count: 1 } });
  await until('every instance running', async () => {
    const { items } = await admin.call('listServices', {});
    return items.every((s) => s.instances.length === s.count && s.instances.every((i) => i.state === 'running')) ? true : undefined;
  });
});

after(async () => {
  for (const a of agents) await a.stop();
  await cloud?.close();
  const { rmSync } = await import('node:fs');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const desired = (node: string) => admin.call('nodeDesired', { params: { name: node }, query: {} }) as Promise<NodeDesired>;
const desiredRevs = async () => Object.fromEntries((await admin.call('listNodes', {})).items.map((n) => [n.name, cloud.cp.services.nodes.desiredRevision(n.name)]));

/**
 * Everything a refused request must leave as it was: the paths, the services (revisions and
 * rollout included) and what each node is told. Not the store's global revision: the
 * simulated agents' reports move it on their own (a replaced instance confirmed gone after its
 * rollout read as done), so it said "changed" under load when nothing the request touches had.
 */
async function snapshot() {
  const db = cloud.cp.services.store.db;
  return {
    paths: db.prepare(`SELECT * FROM paths ORDER BY id`).all(),
    services: db.prepare(`SELECT * FROM services ORDER BY name`).all(),
    revisions: db.prepare(`SELECT * FROM service_revisions ORDER BY service, number`).all(),
    desired: await desiredRevs(),
  };
}

/** The call is refused with `status`, naming `field`, and nothing changed. */
async function refused(p: () => Promise<unknown>, status: number, field?: string, message?: RegExp): Promise<void> {
  const before = await snapshot();
  await rejects(p(), status, field, message);
  assert.deepEqual(await snapshot(), before, `nothing changed after a refusal naming ${field ?? status}`);
}

/** Starts a long-poll of `node`'s desired state from its current revision: resolves when the watch answers. */
function watch(node: string): Promise<{ unchanged?: true; revision: number } & Partial<NodeDesired>> {
  const since = cloud.cp.services.nodes.desiredRevision(node);
  return admin.call('nodeDesired', { params: { name: node }, query: { since, wait: 30 } }) as never;
}

test('a path between services: listed, checked, and sent to the hosts of its network with the blocks, waking their watches', async () => {
  const hosts = new Set((await admin.call('listVms', {})).items.filter((v) => v.network === 'default').map((v) => v.node!));
  const watches = [...hosts].map((n) => watch(n));
  const p = await admin.paths.add('web', 'db', 5432);
  assert.equal(p.text, 'web -> db:5432/tcp');
  assert.deepEqual(p.from, { service: 'web' });
  assert.equal(p.network, 'default');
  assert.equal(p.hostPorts, null, 'a path between services publishes nothing');
  for (const w of await Promise.all(watches)) {
    assert.ok(!w.unchanged, 'the watch woke with a new desired state');
    const net = w.networks!.find((n) => n.name === 'default')!;
    assert.deepEqual(net.paths, [{ from: { service: 'web' }, to: 'db', proto: 'tcp', ports: [5432, 5432] }]);
  }
  const d = await desired([...hosts][0]!);
  const services = d.networks.find((n) => n.name === 'default')!.services!;
  const shown = await admin.call('listServices', { query: { network: 'default' } });
  assert.deepEqual(services.map((s) => [s.name, s.block]), shown.items.map((s) => [s.name, s.block]), 'each service with its block');
  assert.equal(d.published, undefined, 'nothing is published');

  assert.deepEqual((await viewer.paths.list({ network: 'default' })).map((x) => x.id), [p.id]);
  assert.deepEqual(await viewer.paths.list({ network: 'other' }), []);
  assert.deepEqual((await viewer.paths.list({ service: 'web' })).map((x) => x.id), [p.id]);

  const yes = await viewer.paths.check('web', 'db', 5432);
  assert.equal(yes.allowed, true);
  assert.equal(yes.path?.id, p.id, 'the answer names the path');
  assert.equal(await viewer.paths.hasAccess('web', 'db', 5432), true);
  const no = await viewer.paths.check('web', 'db', 5433);
  assert.equal(no.allowed, false);
  assert.match(no.reason!, /web -> db:5433\/tcp: no path allows it/);
  assert.equal(await viewer.paths.hasAccess('db', 'web', 5432), false, 'paths have a direction');
  assert.equal(await viewer.paths.hasAccess('web', 'db', 5432, 'udp'), false, 'and a protocol');

  await admin.paths.remove(p);
  assert.deepEqual(await admin.paths.list(), []);
  assert.equal((await desired([...hosts][0]!)).networks.find((n) => n.name === 'default')!.paths, undefined);
});

test('a path from the internet publishes the service on every node, the idle one too, balanced over its running instances', async () => {
  const watches = NODES.map((n) => watch(n));
  const p = await admin.paths.add(INTERNET, 'web', 80);
  assert.deepEqual(p.hostPorts, [80, 80]);
  const web = await admin.call('getService', { params: { name: 'web' } });
  const backends = web.instances.map((i) => ({ ip: i.ip!, node: i.node! }));
  for (const w of await Promise.all(watches)) {
    assert.ok(!w.unchanged, 'every node was woken');
    assert.deepEqual(w.published, [{ network: 'default', service: 'web', proto: 'tcp', ports: [80, 80], hostPorts: [80, 80], sources: ['0.0.0.0/0'], backends }]);
  }
  assert.deepEqual((await desired('idle')).networks, [], 'the idle node hosts no network, and publishes all the same');

  // A narrower CIDR on the same port joins the same publication; it may repeat its host port.
  const lan = await admin.paths.add('192.168.1.0/24', 'web', 80, { hostPort: 80 });
  const d = await desired('idle');
  assert.deepEqual(d.published!.map((x) => x.sources), [['0.0.0.0/0', '192.168.1.0/24']]);

  // Another port elsewhere on the host.
  const alt = await admin.paths.add(INTERNET, 'web', '8000-8001', { hostPort: 9000 });
  assert.deepEqual(alt.hostPorts, [9000, 9001]);
  const shown = await viewer.call('getService', { params: { name: 'web' } });
  assert.deepEqual(shown.published.map((e) => [e.proto, e.ports, e.hostPorts, e.sources]), [
    ['tcp', [80, 80], [80, 80], ['0.0.0.0/0', '192.168.1.0/24']],
    ['tcp', [8000, 8001], [9000, 9001], ['0.0.0.0/0']],
  ]);
  assert.deepEqual(shown.published[0]!.nodes.map((n) => n.node), [...NODES].sort());

  assert.equal(await viewer.paths.internetAccessible('web', 80), true);
  assert.equal(await viewer.paths.internetAccessible('web', 81), false);
  assert.equal(await viewer.paths.internetAccessible('db', 5432), false);
  const partial = await viewer.paths.check('192.168.0.0/16', 'web', 8000);
  assert.equal(partial.allowed, true, 'the internet covers every LAN');
  const lanOnly = await viewer.paths.check('192.168.0.0/16', 'web', 80);
  assert.equal(lanOnly.allowed, true);

  await admin.paths.remove(alt.id);
  await admin.paths.remove(lan.id);
  await admin.paths.remove(p.id);
  assert.equal((await desired('idle')).published, undefined, 'the last publishing path gone: nothing published');
});

test('an instance of a published service that stops leaves every node\'s backends, the idle one\'s too', async () => {
  const p = await admin.paths.add(INTERNET, 'web', 443);
  const web = await admin.call('getService', { params: { name: 'web' } });
  const gone = web.instances[0]!;
  const w = watch('idle');
  await admin.call('stopVm', { params: { name: gone.name } });
  const woke = await w;
  assert.ok(!woke.unchanged, 'the idle node was told');
  assert.deepEqual(woke.published![0]!.backends.map((b) => b.ip), web.instances.slice(1).map((i) => i.ip));
  // Stopped for real before it starts again: a start that overtakes the stop reaches its node
  // as a restart, whose `running → creating → running` came after this test and moved the
  // next test's desired revisions (seen failing in CI).
  await until('the instance stopped', async () => ((await admin.call('getVm', { params: { name: gone.name } })).state === 'stopped' ? true : undefined));
  await admin.call('startVm', { params: { name: gone.name } });
  await until('the instance is a backend again', async () => ((await desired('idle')).published![0]!.backends.length === 2 ? true : undefined));
  await admin.paths.remove(p);
});

test('bad paths are refused naming the field, and nothing changes', async () => {
  const ok = await admin.paths.add('web', 'db', 5432);
  const add = (body: Record<string, unknown>) => () => admin.call('createPath', { body: body as never });
  await refused(add({ from: 'web', to: 'ghost', ports: '80' }), 404, 'to', /no service ghost/);
  await refused(add({ from: 'ghost', to: 'web', ports: '80' }), 404, 'from', /no service ghost/);
  await refused(add({ from: 'far', to: 'web', ports: '80' }), 400, 'from', /in network other, not default/);
  await refused(add({ from: 'web', to: 'db', ports: '80', network: 'other' }), 400, 'to', /in network default, not other/);
  await refused(add({ from: 'web', to: 'db', ports: '80', network: 'nowhere' }), 404, 'network');
  await refused(add({ from: 'web', to: 'db', ports: '0' }), 400, 'ports', /out of range/);
  await refused(add({ from: 'web', to: 'db', ports: '70000' }), 400, 'ports', /out of range/);
  await refused(add({ from: 'web', to: 'db', ports: '90-80' }), 400, 'ports', /backwards/);
  await refused(add({ from: 'web', to: 'db', ports: '80/icmp' }), 400, 'ports', /not tcp or udp/);
  await refused(add({ from: 'web', to: 'db', ports: 'http' }), 400, 'ports');
  await refused(add({ from: '10.0.0.5/8', to: 'web', ports: '80' }), 400, 'from', /host bits.*10\.0\.0\.0\/8/);
  await refused(add({ from: '300.0.0.0/8', to: 'web', ports: '80' }), 400, 'from');
  await refused(add({ from: '10.0.0.0/33', to: 'web', ports: '80' }), 400, 'from');
  await refused(add({ from: 'web', to: 'db', ports: '5432' }), 409, 'to', new RegExp(`exists already \\(${ok.id}\\)`));
  await refused(add({ from: 'web', to: 'db', ports: '5433', hostPort: 15432 }), 400, 'hostPort', /only a path from a CIDR/);
  // Inside the network's own CIDR: its VMs reach the service directly; nothing to publish.
  await refused(add({ from: '10.200.0.0/24', to: 'web', ports: '80', hostPort: 8080 }), 400, 'hostPort', /inside network default/);
  // db's blueprint says public_ip: false (the default).
  await refused(add({ from: '0.0.0.0/0', to: 'db', ports: '5432' }), 409, 'to', /public_ip: false/);
  await refused(add({ from: '203.0.113.0/24', to: 'db', ports: '5432' }), 409, 'to', /public_ip: false/);
  // Host ports the nodes need.
  await refused(add({ from: '0.0.0.0/0', to: 'web', ports: '22' }), 409, 'hostPort', /22\/tcp is sshd's.*choose another with hostPort/);
  await refused(add({ from: '0.0.0.0/0', to: 'web', ports: '2222', hostPort: 22 }), 409, 'hostPort', /sshd/);
  await refused(add({ from: '0.0.0.0/0', to: 'web', ports: '4789/udp' }), 409, 'hostPort', /VXLAN/);
  await refused(add({ from: '0.0.0.0/0', to: 'web', ports: '51000-52000/udp' }), 409, 'hostPort', /WireGuard/);
  await refused(add({ from: '0.0.0.0/0', to: 'web', ports: '53/udp' }), 409, 'hostPort', /DNS/);
  const apiPort = Number(new URL(cloud.url).port);
  await refused(add({ from: '0.0.0.0/0', to: 'web', ports: '80', hostPort: apiPort }), 409, 'hostPort', /API port/);
  // A host port another publication holds.
  const pub = await admin.paths.add(INTERNET, 'web', 80);
  await refused(add({ from: '0.0.0.0/0', to: 'web', ports: '8080', hostPort: 80 }), 409, 'hostPort', new RegExp(`web:80/tcp is published at 80/tcp \\(path ${pub.id}\\)`));
  await refused(add({ from: '0.0.0.0/0', to: 'far', ports: '79-81' }), 409, 'hostPort', /taken/);
  await refused(add({ from: '198.51.100.0/24', to: 'web', ports: '80', hostPort: 8080 }), 409, 'hostPort', /published at host port 80 already/);
  await refused(add({ from: '0.0.0.0/0', to: 'web', ports: '65000-65535', hostPort: 65500 }), 400, 'hostPort', /beyond 65535/);
  // The same port on the other protocol is another host port.
  const udp = await admin.paths.add(INTERNET, 'web', 80, { proto: 'udp' });
  assert.deepEqual(udp.hostPorts, [80, 80]);
  // Removal of what is not there.
  await refused(() => admin.call('deletePath', { params: { id: '000000000000' } }), 404, 'id');
  await refused(() => admin.paths.remove('web', 'db', 5433), 404, 'to', /no path web -> db:5433\/tcp/);
  // Checks that cannot be answered.
  await rejects(viewer.paths.check('web', 'ghost', 80), 404, 'to');
  await rejects(viewer.paths.check('far', 'web', 80), 400, 'from');
  await rejects(viewer.paths.check('web', 'db', '80-90'), 400, 'port', /one port/);
  await rejects(viewer.paths.check('web', 'db', 0), 400, 'port');
  await rejects(viewer.call('checkPath', { query: { to: 'db', port: '80' } }), 400, 'from');
  await rejects(viewer.call('checkPath', { query: { from: 'web', internet: '1', to: 'db', port: '80' } }), 400, 'from');
  for (const p of await admin.paths.list()) await admin.paths.remove(p.id);
});

test('a viewer lists and checks, but neither adds nor removes', async () => {
  const p = await admin.paths.add('web', 'db', 6379);
  await refused(() => viewer.paths.add('web', 'db', 6380), 403, undefined);
  await refused(() => viewer.paths.remove(p.id), 403, undefined);
  await refused(() => viewer.paths.remove('web', 'db', 6379), 403, undefined);
  const operator = new Butter({ url: cloud.url, token: (await admin.call('createToken', { body: { role: 'operator' } })).secret });
  await operator.paths.remove('web', 'db', 6379);
  assert.deepEqual(await viewer.paths.list(), []);
});

test('a partial answer names the paths that admit only part of FROM', async () => {
  const a = await admin.paths.add('10.200.0.0/18', 'db', 6000);
  const denied = await viewer.paths.check('10.200.0.0/17', 'db', 6000);
  assert.equal(denied.allowed, false);
  assert.deepEqual(denied.paths.map((p) => p.id), [a.id]);
  assert.match(denied.reason!, /only part of 10\.200\.0\.0\/17 is allowed \(by 10\.200\.0\.0\/18 -> db:6000\/tcp\)/);
  const b = await admin.paths.add('10.200.64.0/18', 'db', 6000);
  const together = await viewer.paths.check('10.200.0.0/17', 'db', 6000);
  assert.equal(together.allowed, true, 'two halves cover it');
  assert.deepEqual(together.paths.map((p) => p.id).sort(), [a.id, b.id].sort());
  await admin.paths.remove(a);
  await admin.paths.remove(b);
});

test('deleting a service takes its paths along, to and from it, and unpublishes it', async () => {
  await admin.call('createService', { body: { network: 'default', name: 'tmp', blueprint: blueprint(true), count: 1 } });
  const keep = await admin.paths.add('web', 'db', 5432);
  await admin.paths.add('tmp', 'db', 5432);
  await admin.paths.add('web', 'tmp', 80);
  await admin.paths.add(INTERNET, 'tmp', 8443);
  assert.equal((await desired('idle')).published?.length, 1);
  const w = watch('idle');
  await admin.call('deleteService', { params: { name: 'tmp' } });
  assert.ok(!(await w).unchanged, 'the idle node stops publishing it');
  assert.deepEqual((await admin.paths.list()).map((p) => p.id), [keep.id]);
  assert.equal((await desired('idle')).published, undefined);
  const events = (await admin.call('listEvents', { query: { limit: 1000 } })).items.filter((e) => e.resource === 'path' && /removed with service tmp/.test(e.message));
  assert.equal(events.length, 3);
  // Refused while it is being deleted (its instances still go), and not found after.
  const late = await admin.paths.add('web', 'tmp', 81).then(() => assert.fail('a path to a deleted service'), (e: ButterError) => e);
  assert.ok(late.status === 409 || late.status === 404, late.message);
  assert.equal(late.field, 'to');
  await admin.paths.remove(keep);
  // Gone before the next test, whose refusals must see nothing change: its deletion finishing
  // meanwhile (the instances confirmed gone) read as a change they made.
  await until('service tmp gone', async () => (cloud.cp.services.store.db.prepare(`SELECT 1 FROM services WHERE name = 'tmp'`).get() ? undefined : true), 60_000);
});

test('a published service keeps public_ip: true: an update or rollback to false is refused while a path publishes it', async () => {
  const p = await admin.paths.add(INTERNET, 'web', 80);
  await refused(() => admin.call('updateService', { params: { name: 'web' }, body: { blueprint: blueprint(false) } }), 409, 'blueprint', new RegExp(`public_ip: false, but service web is published by path ${p.id}`));
  await admin.paths.remove(p);
  // Unpublished, the same update is fine (and rolled back again, for the tests after).
  await admin.call('updateService', { params: { name: 'web' }, body: { blueprint: blueprint(false) } });
  await until('web rolled to revision 2', async () => ((await admin.call('getService', { params: { name: 'web' } })).rollout.state === 'done' ? true : undefined), 60_000);
  await rejects(admin.paths.add(INTERNET, 'web', 80), 409, 'to', /revision 2 says instance.public_ip: false/);
  await admin.call('rollbackService', { params: { name: 'web' }, body: {} });
  await until('web rolled back', async () => {
    const s = await admin.call('getService', { params: { name: 'web' } });
    return s.rollout.state === 'done' && s.instances.every((i) => i.state === 'running') ? true : undefined;
  }, 60_000);
  const again = await admin.paths.add(INTERNET, 'web', 80);
  await refused(() => admin.call('rollbackService', { params: { name: 'web' }, body: { to: 2 } }), 409, 'blueprint', /public_ip: false/);
  await admin.paths.remove(again);
});

test('an Idempotency-Key makes a retried add answer the path it made', async () => {
  const first = await admin.paths.add('web', 'db', 7000, { idempotencyKey: 'path-retry-1' });
  const second = await admin.paths.add('web', 'db', 7000, { idempotencyKey: 'path-retry-1' });
  assert.equal(second.id, first.id);
  await rejects(admin.paths.add('web', 'db', 7000), 409, 'to', /exists already/);
  await admin.paths.remove(first);
});

test('an instance moved off a drained node leaves the backends of every node at once, and joins again where it runs', async () => {
  const p = await admin.paths.add(INTERNET, 'web', 80);
  const web = await admin.call('getService', { params: { name: 'web' } });
  const moved = web.instances[0]!;
  const w = watch('idle');
  await admin.call('drainNode', { params: { name: moved.node! }, body: { confirm: true } });
  const woke = await w;
  assert.ok(!woke.unchanged, 'the idle node was told');
  assert.ok(!woke.published![0]!.backends.some((b) => b.ip === moved.ip), 'the moving instance is no backend');
  const after = await until('the moved instance runs again', async () => {
    const s = await admin.call('getService', { params: { name: 'web' } });
    const i = s.instances.find((x) => x.name === moved.name)!;
    return i.state === 'running' && i.node !== moved.node ? i : undefined;
  }, 60_000);
  await until('it is a backend again, on its new node', async () => ((await desired('idle')).published![0]!.backends.some((b) => b.ip === after.ip && b.node === after.node) ? true : undefined));
  await admin.call('uncordonNode', { params: { name: moved.node! } });
  await admin.paths.remove(p);
});
