import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planFdb, wantedFdb } from './fdb-plan.ts';

const remotes = [
  { address: '100.127.0.3', macs: ['52:54:00:AA:00:01', '52:54:00:aa:00:02'] },
  { address: '100.127.0.4', macs: [] },
];

test('wanted entries: flood to each node hosting the network, each remote VM at its node (golden)', () => {
  assert.deepEqual(
    planFdb('btxdefault', [], wantedFdb(remotes)).map((c) => `bridge ${c.join(' ')}`),
    [
      'bridge fdb append 00:00:00:00:00:00 dev btxdefault dst 100.127.0.3',
      'bridge fdb replace 52:54:00:aa:00:01 dev btxdefault dst 100.127.0.3',
      'bridge fdb replace 52:54:00:aa:00:02 dev btxdefault dst 100.127.0.3',
      'bridge fdb append 00:00:00:00:00:00 dev btxdefault dst 100.127.0.4',
    ],
  );
});

test('converged: nothing to do; a moved VM and a gone node: removals first', () => {
  const have = wantedFdb(remotes);
  assert.deepEqual(planFdb('v', have, wantedFdb(remotes)), []);
  const next = wantedFdb([{ address: '100.127.0.3', macs: ['52:54:00:aa:00:01'] }, { address: '100.127.0.5', macs: ['52:54:00:aa:00:02'] }]);
  assert.deepEqual(planFdb('v', have, next), [
    ['fdb', 'del', '52:54:00:aa:00:02', 'dev', 'v', 'dst', '100.127.0.3'],
    ['fdb', 'del', '00:00:00:00:00:00', 'dev', 'v', 'dst', '100.127.0.4'],
    ['fdb', 'append', '00:00:00:00:00:00', 'dev', 'v', 'dst', '100.127.0.5'],
    ['fdb', 'replace', '52:54:00:aa:00:02', 'dev', 'v', 'dst', '100.127.0.5'],
  ]);
});
