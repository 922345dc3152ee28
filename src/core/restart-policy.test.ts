import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffMs, decideRestart, DEFAULT_LIMITS, type RestartLimits } from './restart-policy.ts';

const L: RestartLimits = { maxRestarts: 3, windowMs: 60_000, baseDelayMs: 1000, maxDelayMs: 3000 };

test('backoff: the first restart is immediate, then doubling from the base, capped', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, L)), [0, 1000, 2000, 3000, 3000, 3000]);
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoffMs(n)), [0, 10_000, 20_000, 40_000, 80_000]);
  assert.equal(backoffMs(30), DEFAULT_LIMITS.maxDelayMs);
});

test('never and on-failure leave a guest poweroff stopped; never leaves a crash stopped', () => {
  assert.deepEqual(decideRestart('on-failure', 'poweroff', [], 0, L), { kind: 'stay', reason: 'guest poweroff' });
  assert.deepEqual(decideRestart('never', 'poweroff', [], 0, L), { kind: 'stay', reason: 'guest poweroff' });
  const d = decideRestart('never', 'killed', [], 0, L);
  assert.equal(d.kind, 'stay');
  assert.match(d.reason, /qemu was killed/);
  assert.match(decideRestart('never', 'exited', [], 0, L).reason, /qemu exited/);
});

test('on-failure restarts a killed QEMU at once, and says so', () => {
  assert.deepEqual(decideRestart('on-failure', 'killed', [], 5000, L), { kind: 'restart', n: 1, reason: 'restarted after crash (1): qemu was killed (by a signal, the OOM killer, or a crash)' });
  assert.equal(decideRestart('on-failure', 'exited', [], 5000, L).kind, 'restart');
});

test('always restarts after a guest poweroff too, and does not call it a crash', () => {
  assert.deepEqual(decideRestart('always', 'poweroff', [], 0, L), { kind: 'restart', n: 1, reason: 'restarted after guest poweroff (1)' });
});

test('a second crash waits out the backoff after the first restart, with a reason that does not change while waiting', () => {
  const t0 = 100_000;
  const early = decideRestart('on-failure', 'killed', [t0], t0 + 400, L);
  assert.equal(early.kind, 'wait');
  assert.equal(early.kind === 'wait' && early.at, t0 + 1000);
  assert.equal(decideRestart('on-failure', 'killed', [t0], t0 + 900, L).reason, early.reason);
  assert.deepEqual(decideRestart('on-failure', 'killed', [t0], t0 + 1000, L), { kind: 'restart', n: 2, reason: 'restarted after crash (2): qemu was killed (by a signal, the OOM killer, or a crash)' });
});

test('after the cap within the window the VM stays stopped: crash loop', () => {
  const t = [0, 1000, 3000];
  const d = decideRestart('always', 'killed', t, 10_000, L);
  assert.equal(d.kind, 'stay');
  assert.match(d.reason, /^crash loop: qemu was killed .*after 3 restarts within 1 min/);
});

test('restarts older than the window no longer count', () => {
  const d = decideRestart('on-failure', 'killed', [0, 1000, 3000], 62_000, L);
  // Only 3000 is within 60 s of 62 000: this is restart 2 of the window, 1 s after it.
  assert.deepEqual(d, { kind: 'restart', n: 2, reason: 'restarted after crash (2): qemu was killed (by a signal, the OOM killer, or a crash)' });
});
