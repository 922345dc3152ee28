import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byCodeUnit } from './code-unit-order.ts';

test('names sort in code-unit order, as SQLite ORDER BY does, not by locale', () => {
  assert.deepEqual(['node-b', 'nodea', 'Node-c', 'node-a', 'node-10', 'node-9'].sort(byCodeUnit), ['Node-c', 'node-10', 'node-9', 'node-a', 'node-b', 'nodea']);
  assert.equal(byCodeUnit('x', 'x'), 0);
});
