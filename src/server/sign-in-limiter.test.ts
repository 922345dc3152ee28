import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignInLimiter } from './sign-in-limiter.ts';

test('after max failures in the window an address waits until the oldest leaves it; others are not held up', () => {
  let now = 1_000_000;
  const l = new SignInLimiter({ max: 3, windowMs: 60_000, clock: () => now });
  for (let i = 0; i < 3; i++) {
    assert.equal(l.retryAfter('a'), 0);
    l.fail('a');
    now += 10_000;
  }
  // Failures at 0 s, 10 s, 20 s; now 30 s: the first leaves the window at 60 s.
  assert.equal(l.retryAfter('a'), 30);
  assert.equal(l.retryAfter('b'), 0);
  now += 30_000;
  assert.equal(l.retryAfter('a'), 0);
  l.fail('a');
  assert.ok(l.retryAfter('a') > 0, 'the new failure makes three in the window again');
});

test('the addresses remembered are bounded: the least recently failed is forgotten', () => {
  const l = new SignInLimiter({ max: 1, maxAddresses: 2, clock: () => 0 });
  l.fail('a');
  l.fail('b');
  l.fail('c');
  assert.equal(l.retryAfter('a'), 0);
  assert.ok(l.retryAfter('b') > 0);
  assert.ok(l.retryAfter('c') > 0);
});
