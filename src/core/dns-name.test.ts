import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toDnsName } from './dns-name.ts';

test('DNS names for certificates: punycode for international names, lowercase, no trailing dot', () => {
  assert.equal(toDnsName('Bücher.Example'), 'xn--bcher-kva.example');
  assert.equal(toDnsName('cp.example.'), 'cp.example');
  assert.equal(toDnsName('*.cp.example'), '*.cp.example');
  assert.equal(toDnsName('localhost'), 'localhost');
});

test('what is not a DNS name is refused, including what URL parsing would let through', () => {
  for (const bad of ['', 'bad name', 'a_b.example', '%41.example', 'ex*mple.example', '*.*.example', '-a.example', 'a-.example', 'a..b', '[::1]', 'xn--zz.example', `${'a'.repeat(64)}.example`, `${'a.'.repeat(127)}ab`]) {
    assert.equal(toDnsName(bad), null, bad);
  }
});
