import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freeVni, MAX_VNI, networkClash } from './network-clash.ts';
import { uplinkOf, UPLINK_SLOTS } from './gateway-ns.ts';
import { bridgeName, vxlanName } from './vm-spec.ts';

/** Two long names with the same first three characters whose 24-bit hashes meet: found, not written down. */
function collidingNames(prefix = 'clash'): [string, string] {
  const seen = new Map<string, string>();
  for (let i = 0; ; i++) {
    const name = `${prefix}-${i}`;
    const br = bridgeName(name);
    const before = seen.get(br);
    if (before) return [before, name];
    seen.set(br, name);
  }
}

test('two names whose hashed device names collide clash on the name', () => {
  const [a, b] = collidingNames();
  assert.notEqual(a, b);
  assert.equal(vxlanName(a), vxlanName(b));
  const c = networkClash({ name: b, vni: 200 }, [{ name: 'default', vni: 100 }, { name: a, vni: 101 }]);
  assert.equal(c?.field, 'name');
  assert.equal(c?.other, a);
  assert.match(c!.message, new RegExp(bridgeName(a)));
});

test('a short name equal to a long name\'s hashed id clashes too', () => {
  const long = 'a-rather-long-network-name';
  const short = bridgeName(long).slice(3);
  assert.ok(short.length <= 10 && short !== long);
  assert.equal(bridgeName(short), bridgeName(long));
  assert.equal(networkClash({ name: short, vni: 101 }, [{ name: long, vni: 100 }])?.field, 'name');
});

test('VNIs a multiple of 16,384 apart share an uplink /30 and clash on the VNI', () => {
  assert.equal(uplinkOf(100).root, uplinkOf(100 + UPLINK_SLOTS).root);
  const c = networkClash({ name: 'b', vni: 100 + UPLINK_SLOTS }, [{ name: 'a', vni: 100 }]);
  assert.equal(c?.field, 'vni');
  assert.equal(c?.other, 'a');
  assert.equal(networkClash({ name: 'b', vni: 101 + UPLINK_SLOTS }, [{ name: 'a', vni: 100 }]), undefined);
});

test('freeVni skips VNIs whose uplink is taken, wraps past the top, and runs out', () => {
  assert.equal(freeVni([100, 101], 102), 102);
  // 16484 would share 100's uplink: the next one is free.
  assert.equal(freeVni([100, 16483], 16484), 16485);
  const top = freeVni([MAX_VNI], MAX_VNI + 1);
  assert.ok(top !== undefined && top >= 100 && uplinkOf(top).root !== uplinkOf(MAX_VNI).root);
  const all = Array.from({ length: UPLINK_SLOTS }, (_, i) => 100 + i);
  assert.equal(freeVni(all, 100 + UPLINK_SLOTS), undefined);
});
