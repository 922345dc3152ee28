import assert from 'node:assert/strict';
import { test } from 'node:test';
import { idleReason, idleSample, isIdleReason, parseIdleStop } from './idle-plan.ts';

test('parseIdleStop takes whole seconds, minutes and hours only', () => {
  assert.equal(parseIdleStop('30s'), 30_000);
  assert.equal(parseIdleStop('10m'), 600_000);
  assert.equal(parseIdleStop('2h'), 7_200_000);
  for (const bad of ['', '10', '0m', '1.5m', '10 m', '5d', '-1m', 'm', '010m', '1234567s']) assert.equal(parseIdleStop(bad), undefined, bad);
});

test('a VM whose counters do not move is suspended once its whole period has passed', () => {
  let d = idleSample(undefined, 500, 1000, 10_000);
  assert.equal(d.suspend, false);
  d = idleSample(d.watch, 500, 10_999, 10_000);
  assert.equal(d.suspend, false, 'not yet: 9.999 s idle');
  d = idleSample(d.watch, 500, 11_000, 10_000);
  assert.deepEqual(d, { watch: { bytes: 500, since: 1000 }, suspend: true, idleMs: 10_000 });
});

test('any byte, either way, starts the period again', () => {
  let d = idleSample(undefined, 500, 0, 10_000);
  d = idleSample(d.watch, 501, 9_000, 10_000);
  assert.deepEqual(d.watch, { bytes: 501, since: 9_000 });
  d = idleSample(d.watch, 501, 18_000, 10_000);
  assert.equal(d.suspend, false, '9 s since the last byte');
  d = idleSample(d.watch, 501, 19_000, 10_000);
  assert.equal(d.suspend, true);
});

test('a counter that went down (a tap made again) is traffic, not idleness', () => {
  const d = idleSample({ bytes: 900, since: 0 }, 10, 60_000, 10_000);
  assert.deepEqual(d, { watch: { bytes: 10, since: 60_000 }, suspend: false });
});

test('no watch yet (an agent restart): a whole period is waited, whatever came before', () => {
  assert.equal(idleSample(undefined, 0, 1e12, 10_000).suspend, false);
});

test('the idle reason names the period, and is told apart from others', () => {
  assert.equal(idleReason('10m'), 'idle for 10m');
  assert.ok(isIdleReason('idle for 10m'));
  assert.ok(!isIdleReason('suspend failed: x'));
  assert.ok(!isIdleReason(null));
});
