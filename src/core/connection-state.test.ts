import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ControlPlaneLink } from './connection-state.ts';

test('one line per change of state, none per repeated attempt; failures count the backoff', () => {
  const link = new ControlPlaneLink('https://cp:7700');
  const lines = [
    link.failed('unreachable', 'ECONNREFUSED'),
    link.failed('unreachable', 'ECONNREFUSED'),
    link.failed('unreachable', 'timed out'),
  ];
  assert.equal(link.failures, 3);
  lines.push(link.succeeded(), link.succeeded(), link.failed('unreachable', 'reset'), link.succeeded());
  assert.deepEqual(
    lines.map((l) => l?.replace(/:.*/, '')),
    ['control plane unreachable at https', undefined, undefined, 'control plane reachable again at https', undefined, 'control plane unreachable at https', 'control plane reachable again at https'],
  );
  assert.match(lines[0]!, /ECONNREFUSED; retrying with backoff/);
  assert.match(lines[3]!, /after 3 failed attempts$/);
  assert.match(lines[6]!, /after 1 failed attempt$/);
  assert.equal(link.failures, 0);
});

test('the first success says connected; a refused token and an untrusted certificate carry the hint', () => {
  const link = new ControlPlaneLink('https://cp:7700', 'remove /s/credential.json and join again');
  assert.equal(link.succeeded(), 'connected to the control plane at https://cp:7700');
  const refused = link.failed('rejected', 'unknown token');
  assert.match(refused!, /refuses this node's token: unknown token; .*\. remove \/s\/credential\.json and join again$/);
  assert.equal(link.failed('rejected', 'unknown token'), undefined);
  // A different failure is a different state: news again.
  assert.match(link.failed('untrusted', 'self-signed certificate in certificate chain')!, /does not trust: self-signed.*credential\.json/);
  assert.match(link.failed('unreachable', 'ECONNREFUSED')!, /unreachable/);
  assert.equal(link.failures, 4);
});
