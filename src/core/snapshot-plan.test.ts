import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextSnapshotName, planSnapshots } from './snapshot-plan.ts';
import { backingRange, QCOW2_MAGIC } from './qcow2-header.ts';

test('default snapshot names take the first free number', () => {
  assert.equal(nextSnapshotName(new Set()), 'snap-1');
  assert.equal(nextSnapshotName(new Set(['initial', 'snap-1', 'snap-3'])), 'snap-2');
});

test('a node takes the listed snapshots it lacks and removes the ones no longer listed', () => {
  assert.deepEqual(planSnapshots(['i', 'a', 'b'], ['i', 'a', 'old'], 'i', true), { take: ['b'], remove: ['old'] });
});

test('the initial snapshot is never taken late, and nothing is taken before the disk exists', () => {
  // A missing initial on a disk that exists is not made from the current disk (the guest wrote to it).
  assert.deepEqual(planSnapshots(['i', 'a'], [], 'i', true), { take: ['a'], remove: [] });
  assert.deepEqual(planSnapshots(['i', 'a'], [], 'i', false), { take: [], remove: [] });
});

test('the backing file range of a qcow2 header', () => {
  const h = Buffer.alloc(32);
  h.writeUInt32BE(QCOW2_MAGIC, 0);
  assert.equal(backingRange(h), null);
  h.writeBigUInt64BE(512n, 8);
  h.writeUInt32BE(17, 16);
  assert.deepEqual(backingRange(h), { offset: 512, length: 17 });
  assert.throws(() => backingRange(Buffer.alloc(32)), /not a qcow2/);
});
