import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprint } from './idempotency.ts';

test('a fingerprint is of the request, not of how its JSON was written: key order and absent fields do not count, values and list order do', () => {
  const a = fingerprint({ name: 'web', image: 'img', labels: { a: '1', b: '2' }, networks: ['x', 'y'] });
  assert.equal(fingerprint({ networks: ['x', 'y'], labels: { b: '2', a: '1' }, image: 'img', name: 'web', zone: undefined }), a);
  assert.notEqual(fingerprint({ name: 'web', image: 'img', labels: { a: '1', b: '2' }, networks: ['y', 'x'] }), a);
  assert.notEqual(fingerprint({ name: 'web', image: 'img', labels: { a: '1', b: '3' }, networks: ['x', 'y'] }), a);
  assert.notEqual(fingerprint({ name: 'web', image: 'img', labels: { a: '1', b: '2' }, networks: ['x', 'y'], cpus: 1 }), a);
  assert.notEqual(fingerprint({ n: '1' }), fingerprint({ n: 1 }));
  assert.match(a, /^[0-9a-f]{64}$/);
});
