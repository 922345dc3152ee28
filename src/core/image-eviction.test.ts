import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diskIsLow, planEviction } from './image-eviction.ts';

test('unused blobs go after the grace period; used ones never; a used-again blob starts over', () => {
  const base = { cached: ['a', 'b', 'c'], inUse: new Set(['a']), graceMs: 1000, diskLow: false };
  const p1 = planEviction({ ...base, unusedSince: new Map(), now: 10_000 });
  assert.deepEqual(p1.evict, []);
  assert.deepEqual([...p1.unusedSince], [['b', 10_000], ['c', 10_000]]);
  const p2 = planEviction({ ...base, inUse: new Set(['a', 'c']), unusedSince: p1.unusedSince, now: 10_999 });
  assert.deepEqual(p2.evict, []);
  assert.deepEqual([...p2.unusedSince], [['b', 10_000]], 'c is used again');
  const p3 = planEviction({ ...base, unusedSince: p2.unusedSince, now: 11_000 });
  assert.deepEqual(p3.evict, ['b']);
  assert.deepEqual([...p3.unusedSince], [['c', 11_000]], "c's clock started over");
});

test('a low disk evicts every unused blob at once, still never a used one', () => {
  const p = planEviction({ cached: ['a', 'b'], inUse: new Set(['a']), unusedSince: new Map(), now: 0, graceMs: 3_600_000, diskLow: true });
  assert.deepEqual(p.evict, ['b']);
});

test('disk low is below the free percentage', () => {
  assert.equal(diskIsLow({ bavail: 9, blocks: 100 }, 10), true);
  assert.equal(diskIsLow({ bavail: 10, blocks: 100 }, 10), false);
  assert.equal(diskIsLow({ bavail: 0, blocks: 0 }, 10), false, 'a filesystem that reports no size is not judged');
});
