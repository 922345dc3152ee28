// The panel's pure rules: which nodes get a warning, the cluster's totals, and the CLI lines
// its actions show (quoted so a shell reads them back as the same words).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { Node } from '../src/api/schemas/node.ts';
import { cliLine, shellWord } from '../panel/src/app/cli-line.ts';
import { nodeWarnings, totals } from '../panel/src/pages/overview/warnings.ts';
import { createWords, resizeWords } from '../panel/src/pages/vms/cli.ts';

const G = 1024 ** 3;
const res = (cpus: number, mem: number, disk: number) => ({ cpus, memoryBytes: mem * G, diskBytes: disk * G });
function node(name: string, over: Partial<Node> = {}): Node {
  return {
    name, state: 'ready', cordoned: false, group: 'default', zone: 'default', labels: {}, accel: 'tcg', accelReason: null, driver: 'sim',
    capacity: res(4, 8, 100), reserved: res(0, 0, 0), allocatable: res(16, 8, 100), allocated: res(2, 2, 10), free: res(14, 6, 90),
    vmCount: 1, mesh: null, lastHeartbeatAt: null, createdAt: '2026-12-01T00:00:00Z', ...over,
  };
}

test('a node is warned about when unreachable, cordoned or allocated beyond allocatable, and only then', () => {
  assert.deepEqual(nodeWarnings(node('a')), []);
  assert.deepEqual(nodeWarnings(node('b', { state: 'unreachable', cordoned: true })).map((w) => w.kind), ['unreachable', 'cordoned']);
  const over = nodeWarnings(node('c', { allocated: res(17, 9, 10) }));
  assert.deepEqual(over.map((w) => [w.node, w.kind]), [['c', 'over-committed']]);
  assert.match(over[0]!.text, /more CPU, memory allocated than allocatable/);
  // Allocated CPUs beyond the host's own (within the ratio) is ordinary overcommit, no warning.
  assert.deepEqual(nodeWarnings(node('d', { allocated: res(12, 2, 10) })), []);
});

test("the cluster's totals add every node; one that never reported counts no capacity", () => {
  const t = totals([node('a'), node('b', { capacity: null, allocatable: res(0, 0, 0), allocated: res(0, 0, 0) })]);
  assert.deepEqual(t.total, res(4, 8, 100));
  assert.deepEqual(t.allocatable, res(16, 8, 100));
  assert.deepEqual(t.allocated, res(2, 2, 10));
});

test('CLI lines: the flags a form filled in, words quoted for a shell', () => {
  assert.equal(cliLine(createWords({ name: 'web', image: 'tiny', cpus: 1, memory: '256M' })), 'butter vm create web --image tiny --cpus 1 --memory 256M');
  assert.equal(
    cliLine(createWords({ name: 'db', image: 'tiny', networks: ['a', 'b'], zone: 'east', userData: '#!/bin/sh', sshKeys: ['ssh-ed25519 AAAA x'] })),
    'butter vm create db --image tiny --network a --network b --zone east --user-data user-data.yaml --ssh-key key1.pub',
  );
  assert.equal(cliLine(createWords({})), 'butter vm create NAME --image IMAGE');
  assert.equal(cliLine(resizeWords('web', undefined, '1G')), 'butter vm resize web --memory 1G');
  for (const w of ["it's", 'a b', '$(rm -rf /)', '', 'x;y', 'plain-1.2/3']) {
    const echoed = execFileSync('sh', ['-c', `printf '%s' ${shellWord(w)}`], { encoding: 'utf8' });
    assert.equal(echoed, w, `${shellWord(w)} reads back as ${JSON.stringify(w)}`);
  }
});
