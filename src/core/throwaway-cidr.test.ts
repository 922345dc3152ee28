import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwawayCidr } from './throwaway-cidr.ts';

test('the first /22 of 10.200.0.0/13 that no network overlaps and no node address is in', () => {
  assert.equal(throwawayCidr([], []), '10.200.0.0/22');
  assert.equal(throwawayCidr(['10.0.0.0/16', '10.200.0.0/24'], []), '10.200.4.0/22');
  assert.equal(throwawayCidr(['10.200.0.0/16'], ['10.201.0.7', 'fe80::1']), '10.201.4.0/22');
  assert.equal(throwawayCidr(['10.192.0.0/10'], []), undefined, 'none left');
});
