/**
 * The control plane refuses a network no agent could build beside another (issue 12): device
 * names that collide (the 24-bit name hash, core/vm-spec.ts bridgeName), and VNIs whose uplink
 * /30s meet (VNI modulo 16,384, core/gateway-ns.ts). The colliding names are found here by
 * brute force with the real hash, not written down.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bridgeName } from '../src/core/vm-spec.ts';
import { uplinkOf } from '../src/core/gateway-ns.ts';
import { rejects, startTestCloud, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
before(async () => {
  cloud = await startTestCloud();
});
after(async () => {
  await cloud.close();
});

const count = (table: string) => (cloud.cp.services.store.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

function collidingPair(prefix: string): [string, string] {
  const seen = new Map<string, string>();
  for (let i = 0; ; i++) {
    const name = `${prefix}-${i}`;
    const before = seen.get(bridgeName(name));
    if (before) return [before, name];
    seen.set(bridgeName(name), name);
  }
}

test('a network whose device names collide with another\'s is refused on its name, and nothing is made', async () => {
  const [a, b] = collidingPair('team');
  await cloud.admin.call('createNetwork', { body: { name: a } });
  const [n0, e0] = [count('networks'), count('events')];
  await rejects(cloud.admin.call('createNetwork', { body: { name: b } }), 409, 'name', new RegExp(`same device names as network ${a}.*${bridgeName(a)}`));
  assert.deepEqual([count('networks'), count('events')], [n0, e0]);
  // A short name that is exactly a long one's hashed id: the same bridge.
  const short = bridgeName(a).slice(3);
  await rejects(cloud.admin.call('createNetwork', { body: { name: short } }), 409, 'name', new RegExp(`network ${a}`));
  // The other way round: a short one first, then a long one hashing onto it.
  const [c, d] = collidingPair('xyz');
  await cloud.admin.call('createNetwork', { body: { name: bridgeName(c).slice(3) } });
  await rejects(cloud.admin.call('createNetwork', { body: { name: d } }), 409, 'name');
});

test('VNIs are handed out so that no two networks share an uplink /30', async () => {
  // A store that handed out VNIs up to 16,483 (networks made and removed over time): the next
  // one up, 16,484, would share the default network's (VNI 100) uplink addresses.
  const db = cloud.cp.services.store.db;
  db.prepare(`INSERT INTO networks (name, cidr, gateway, nat, vni, created_at) VALUES ('high', '10.250.0.0/24', '10.250.0.1', 1, 16483, ?)`).run(new Date().toISOString());
  const n = await cloud.admin.call('createNetwork', { body: { name: 'after-high' } });
  const others = (await cloud.admin.call('listNetworks', {})).items.filter((x) => x.name !== n.name);
  assert.ok(n.vni > 16483, `VNIs still go up: ${n.vni}`);
  for (const o of others) assert.notEqual(uplinkOf(o.vni).root, uplinkOf(n.vni).root, `${n.name} (VNI ${n.vni}) shares ${o.name}'s (VNI ${o.vni}) uplink`);
});
