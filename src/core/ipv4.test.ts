import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allocateIp, checkIpv4, contains, gatewayOf, intToIp, ipToInt, isIpv4, overlaps, parseCidr, prefixMask, splitCidr } from './ipv4.ts';

test('parseCidr refuses host bits and silly prefixes', () => {
  assert.deepEqual(parseCidr('10.200.0.0/16'), { network: ipToInt('10.200.0.0'), prefix: 16, size: 65536 });
  assert.throws(() => parseCidr('10.200.0.1/16'), /host bits/);
  assert.throws(() => parseCidr('10.0.0.0/31'), /out of range/);
  assert.throws(() => parseCidr('10.0.0/24'), /not a CIDR/);
  assert.throws(() => parseCidr('10.0.0.300/24'), /not an IPv4/);
  assert.throws(() => parseCidr('10.0.0.0/30', { maxPrefix: 29 }), /out of range \/8..\/29/);
});

test('parseCidr refuses ranges the host or Butter reserve', () => {
  assert.throws(() => parseCidr('169.254.0.0/16'), /link-local/);
  assert.throws(() => parseCidr('127.0.0.0/8'), /loopback/);
  assert.throws(() => parseCidr('100.64.0.0/10'), /node mesh/);
  assert.throws(() => parseCidr('100.127.4.0/24'), /node mesh/);
  assert.throws(() => parseCidr('224.0.0.0/8'), /multicast/);
  assert.throws(() => parseCidr('100.126.8.0/24'), /links to network gateways/);
  assert.equal(parseCidr('100.125.0.0/16').prefix, 16);
});

test('allocateIp hands out the lowest free guest address and never a reserved one', () => {
  const c = parseCidr('10.1.2.0/29');
  assert.equal(gatewayOf(c), '10.1.2.1');
  const used = new Set<string>();
  const got: string[] = [];
  for (;;) {
    const ip = allocateIp(c, used);
    if (!ip) break;
    used.add(ip);
    got.push(ip);
  }
  assert.deepEqual(got, ['10.1.2.2', '10.1.2.3', '10.1.2.4', '10.1.2.5', '10.1.2.6']);
});

test('allocateIp: unique, inside the CIDR, never network/gateway/broadcast (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 24, max: 30 }), fc.array(fc.nat(300), { maxLength: 40 }), (prefix, frees) => {
      const c = parseCidr(`10.9.0.0/${prefix}`);
      const used = new Set<string>();
      for (const f of frees) {
        const ip = allocateIp(c, used);
        if (ip === undefined) {
          assert.equal(used.size, c.size - 3);
          break;
        }
        assert.ok(contains(c, ip));
        assert.ok(!used.has(ip));
        assert.notEqual(ip, intToIp(c.network));
        assert.notEqual(ip, intToIp(c.network + 1));
        assert.notEqual(ip, intToIp(c.network + c.size - 1));
        used.add(ip);
        if (f % 3 === 0) used.delete([...used][f % used.size]!);
      }
    }),
  );
});

test('allocateIp from a hint skips what the caller knows is taken', () => {
  const c = parseCidr('10.1.2.0/29');
  assert.equal(allocateIp(c, new Set(['10.1.2.2', '10.1.2.3']), '10.1.2.4'), '10.1.2.4');
  assert.equal(allocateIp(c, new Set(['10.1.2.4']), '10.1.2.4'), '10.1.2.5');
  assert.equal(allocateIp(c, new Set(), '10.9.9.9'), '10.1.2.2', 'a hint outside the CIDR is ignored');
  assert.equal(allocateIp(c, new Set(), '10.1.2.0'), '10.1.2.2', 'never below the first guest address');
});

test('overlaps is symmetric and matches containment of network addresses', () => {
  const a = parseCidr('10.20.0.0/16');
  assert.ok(overlaps(a, parseCidr('10.20.5.0/24')));
  assert.ok(overlaps(parseCidr('10.20.5.0/24'), a));
  assert.ok(!overlaps(a, parseCidr('10.21.0.0/16')));
  assert.ok(overlaps(parseCidr('10.0.0.0/8'), a));
});

test('one IPv4 syntax: dotted quad, 0..255, no leading zeros (octal to inet_aton)', () => {
  for (const ok of ['0.0.0.0', '10.0.0.1', '255.255.255.255', '192.168.0.10']) assert.equal(isIpv4(ok), true, ok);
  for (const bad of ['', '10.0.0', '10.0.0.1.2', '10.0.0.256', '010.0.0.1', '10.0.0.01', '10.0.0.-1', '1e1.0.0.1', '::1', 'host', '10.0.0.1 ']) {
    assert.equal(isIpv4(bad), false, bad);
  }
  assert.throws(() => checkIpv4('10.0.0.01', 'gateway'), /bad IPv4 gateway "10.0.0.01"/);
  assert.throws(() => ipToInt('010.0.0.1'), /not an IPv4 address/);
  assert.deepEqual(splitCidr('10.1.2.3/0'), { ip: '10.1.2.3', prefix: 0 });
  assert.throws(() => splitCidr('10.0.0.0/33'), /bad IPv4 CIDR/);
  assert.throws(() => splitCidr('10.0.0/8'), /bad IPv4 CIDR/);
  assert.equal(prefixMask(0), 0);
  assert.equal(prefixMask(24), 0xffffff00);
  assert.equal(prefixMask(32), 0xffffffff);
});
