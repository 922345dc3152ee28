import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rounds } from './path-probe.ts';

test('rounds: an address is never a source in a round that sends to it', () => {
  const m = (src: string, dst: string) => ({ src, dst, proto: 'tcp' as const, port: 80 });
  const out = rounds([m('a', 'b'), m('c', 'b'), m('b', 'a'), m('d', 'a'), m('a', 'd')]);
  for (const r of out) {
    const srcs = new Set(r.map((x) => x.src));
    assert.ok(!r.some((x) => srcs.has(x.dst)), JSON.stringify(r));
  }
  assert.equal(out.flat().length, 5, 'every probe in some round');
  assert.deepEqual(out.map((r) => [...new Set(r.map((x) => x.src))]), [['a', 'c'], ['b', 'd']]);
});
