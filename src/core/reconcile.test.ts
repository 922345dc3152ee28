import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { DesiredVm } from '../api/schemas/desired.ts';
import { plan, type Applied, type Observed } from './reconcile.ts';

const vm = (id: string, power: DesiredVm['power'], restartGen = 0): DesiredVm => ({
  id,
  name: `vm-${id}`,
  cpus: 1,
  memoryBytes: 256 << 20,
  diskBytes: 1 << 30,
  power,
  image: { name: 'tiny', kind: 'kernel', format: null, rootFormat: null, cmdline: null },
  nics: [{ network: 'default', ip: '10.0.0.2', mac: '52:54:00:00:00:01' }],
  userData: '',
  sshKeys: [],
  metadataTokens: 'optional',
  restartGen,
});

test('starts new VMs, stops stopped ones, destroys deleted and unknown ones', () => {
  const ops = plan(
    [vm('a', 'running'), vm('b', 'stopped'), vm('c', 'deleted')],
    [{ id: 'b', running: true }, { id: 'c', running: true }, { id: 'stray', running: false }],
    {},
  );
  assert.deepEqual(
    ops.map((o) => `${o.kind} ${'vm' in o ? o.vm.id : o.id}`),
    ['destroy c', 'destroy stray', 'start a', 'stop b'],
  );
});

test('a running VM at its generation is left alone: adoption after an agent restart', () => {
  assert.deepEqual(plan([vm('a', 'running', 3)], [{ id: 'a', running: true }], { a: { gen: 3 } }), []);
});

test('a guest that powered itself off stays off until the next start', () => {
  assert.deepEqual(plan([vm('a', 'running', 1)], [{ id: 'a', running: false }], { a: { gen: 1 } }), []);
  assert.deepEqual(plan([vm('a', 'running', 2)], [{ id: 'a', running: false }], { a: { gen: 1 } }).map((o) => o.kind), ['start']);
});

test('a newer generation restarts a running VM', () => {
  assert.deepEqual(plan([vm('a', 'running', 2)], [{ id: 'a', running: true }], { a: { gen: 1 } }).map((o) => o.kind), ['restart']);
});

test('plan is idempotent: applying its ops leaves nothing to do (property)', () => {
  const arb = fc.array(
    fc.record({ power: fc.constantFrom('running', 'stopped', 'deleted') as fc.Arbitrary<DesiredVm['power']>, gen: fc.nat(3), running: fc.boolean(), present: fc.boolean(), applied: fc.option(fc.nat(3)) }),
    { maxLength: 8 },
  );
  fc.assert(
    fc.property(arb, (rows) => {
      const desired = rows.map((r, i) => vm(String(i), r.power, r.gen));
      let observed: Observed[] = rows.flatMap((r, i) => (r.present ? [{ id: String(i), running: r.running }] : []));
      const applied: Record<string, Applied> = Object.fromEntries(rows.flatMap((r, i) => (r.applied === null ? [] : [[String(i), { gen: r.applied }]])));
      // Simulate applying the plan.
      for (const op of plan(desired, observed, applied)) {
        if (op.kind === 'destroy') observed = observed.filter((o) => o.id !== op.id);
        if (op.kind === 'stop') observed = observed.map((o) => (o.id === op.id ? { ...o, running: false } : o));
        if (op.kind === 'start' || op.kind === 'restart') {
          observed = [...observed.filter((o) => o.id !== op.vm.id), { id: op.vm.id, running: true }];
          applied[op.vm.id] = { gen: op.vm.restartGen };
        }
      }
      assert.deepEqual(plan(desired, observed, applied), []);
    }),
  );
});
