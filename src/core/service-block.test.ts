import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allocateBlock, blockPrefix, cidrText } from './service-block.ts';
import { ipToInt, overlaps, parseCidr, parseRange, type Cidr } from './ipv4.ts';

const point = (ip: string): Cidr => ({ network: ipToInt(ip), prefix: 32, size: 1 });

test('blockPrefix is the smallest power of two holding the count', () => {
  assert.equal(blockPrefix(1), 32);
  assert.equal(blockPrefix(2), 31);
  assert.equal(blockPrefix(256), 24);
  assert.equal(blockPrefix(257), 23);
  assert.equal(blockPrefix(768), 22);
});

test('a block avoids the gateway, VMs and other blocks, lowest first', () => {
  const net = parseCidr('10.0.0.0/24');
  const taken = [point('10.0.0.0'), point('10.0.0.1'), point('10.0.0.255'), point('10.0.0.70')];
  const a = allocateBlock(net, 64, taken);
  assert.ok(a.ok);
  assert.equal(cidrText(a.block), '10.0.0.128/26');
  const b = allocateBlock(net, 50, [...taken, a.block]);
  assert.equal(b.ok, false);
  assert.ok(!b.ok && b.largestFree && cidrText(b.largestFree) === '10.0.0.32/27', JSON.stringify(b));
});

test('no room: the largest free block is named, or none', () => {
  const net = parseCidr('10.0.0.0/28');
  const r = allocateBlock(net, 768, [point('10.0.0.0')]);
  assert.ok(!r.ok && r.largestFree && cidrText(r.largestFree) === '10.0.0.8/29');
  const full = allocateBlock(net, 1, [net]);
  assert.deepEqual(full, { ok: false, largestFree: undefined });
});

test('property: blocks never overlap what is taken nor each other, and hold the count', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 12 }), fc.array(fc.integer({ min: 0, max: 4095 }), { maxLength: 30 }), (counts, vmOffsets) => {
      const net = parseRange('10.8.0.0/20');
      const taken: Cidr[] = [point('10.8.0.0'), point('10.8.0.1'), point('10.8.15.255'), ...vmOffsets.map((o) => ({ network: net.network + o, prefix: 32, size: 1 }))];
      const fixed = [...taken];
      const blocks: Cidr[] = [];
      for (const n of counts) {
        const r = allocateBlock(net, n, [...taken, ...blocks]);
        if (!r.ok) {
          if (r.largestFree) assert.ok(r.largestFree.size < n);
          continue;
        }
        assert.ok(r.block.size >= n && r.block.size < 2 * n, 'the smallest block that holds n');
        assert.equal(r.block.network % r.block.size, 0, 'aligned');
        assert.ok(r.block.network >= net.network && r.block.network + r.block.size <= net.network + net.size, 'inside the network');
        for (const t of fixed) assert.ok(!overlaps(r.block, t), `${cidrText(r.block)} overlaps taken ${cidrText(t)}`);
        for (const b of blocks) assert.ok(!overlaps(r.block, b), `${cidrText(r.block)} overlaps block ${cidrText(b)}`);
        blocks.push(r.block);
      }
    }),
  );
});
