import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Liveness } from './liveness.ts';

test('liveness runs from the last report, never from before the server started', () => {
  const l = new Liveness('2026-01-01T00:00:10.000Z');
  assert.equal(l.aliveAt('a', null), '2026-01-01T00:00:10.000Z', 'never reported: from start-up');
  assert.equal(l.aliveAt('a', '2026-01-01T00:00:01.000Z'), '2026-01-01T00:00:10.000Z', 'reported before a restart: a full timeout from start-up');
  l.saw('a', '2026-01-01T00:00:12.000Z');
  assert.equal(l.aliveAt('a', '2026-01-01T00:00:01.000Z'), '2026-01-01T00:00:12.000Z');
  assert.equal(l.last('b', '2026-01-01T00:00:01.000Z'), '2026-01-01T00:00:01.000Z');
  assert.deepEqual(l.takeDirty(), [['a', '2026-01-01T00:00:12.000Z']]);
  assert.deepEqual(l.takeDirty(), [], 'written once');
  l.saw('b', '2026-01-01T00:00:13.000Z');
  l.forget('b');
  assert.deepEqual(l.takeDirty(), []);
  assert.equal(l.last('b', null), null);
});
