import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT_BACKOFF, backoffDelay } from './backoff.ts';

const noJitter = { ...AGENT_BACKOFF, jitter: 0 };

test('waits double from the base up to the cap, and stay there', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => backoffDelay(n, noJitter)), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(backoffDelay(1_000_000, noJitter), 30_000);
  // Nonsense counts are the first wait, not NaN or 0.
  assert.equal(backoffDelay(0, noJitter), 500);
  assert.equal(backoffDelay(-3, noJitter), 500);
});

test('jitter takes up to its share off each wait, never more, never adds', () => {
  const o = { baseMs: 1000, maxMs: 10_000, jitter: 0.5 };
  assert.equal(backoffDelay(3, o, () => 0), 4000);
  assert.equal(backoffDelay(3, o, () => 0.5), 3000);
  assert.equal(backoffDelay(3, o, () => 0.999999), 2000);
  assert.equal(backoffDelay(10, o, () => 0.999999), 5000);
  // With the real random source every wait stays in [d/2, d].
  for (let n = 1; n < 12; n++) {
    const d = Math.min(10_000, 1000 * 2 ** (n - 1));
    const w = backoffDelay(n, o);
    assert.ok(w >= d / 2 && w <= d, `${n}: ${w} not in [${d / 2}, ${d}]`);
  }
});
