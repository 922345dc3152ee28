import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cannotRun, requires } from './requires.ts';

test('a met requirement never skips, in CI or not', () => {
  assert.equal(requires(true, 'needs root', {}), false);
  assert.equal(requires(true, 'needs root', { CI: 'true' }), false);
});

test('a missing requirement skips with its reason outside CI, and fails with it under CI=true', () => {
  assert.equal(requires(false, 'needs root and dnsmasq', {}), 'needs root and dnsmasq');
  assert.equal(requires(false, 'needs root and dnsmasq', { CI: 'false' }), 'needs root and dnsmasq');
  assert.throws(() => requires(false, 'needs root and dnsmasq', { CI: 'true' }), /CI=true, so this test may not skip: needs root and dnsmasq/);
});

test('decided inside a test: skip outside CI, fail under CI=true', () => {
  const skipped: (string | undefined)[] = [];
  const t = { skip: (m?: string) => void skipped.push(m) };
  cannotRun(t, 'no IPv6 on this machine', {});
  assert.deepEqual(skipped, ['no IPv6 on this machine']);
  assert.throws(() => cannotRun(t, 'no IPv6 on this machine', { CI: 'true' }), /may not skip: no IPv6 on this machine/);
  assert.deepEqual(skipped, ['no IPv6 on this machine'], 'not skipped as well');
});
