import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CPU_OVERCOMMIT, schedule, type NodeSnapshot } from './scheduler.ts';
import { GiB } from './units.ts';

const node = (name: string, memGiB: number, usedGiB = 0, ready = true): NodeSnapshot => ({
  name,
  ready,
  capacity: { cpus: 2, memoryBytes: memGiB * GiB, diskBytes: 100 * GiB },
  allocated: { cpus: 0, memoryBytes: usedGiB * GiB, diskBytes: 0 },
  vmCount: 0,
});

test('explains per node why nothing fits', () => {
  const r = schedule([node('a', 4, 3.5), node('b', 8, 0, false)], { cpus: 1, memoryBytes: 1 * GiB, diskBytes: GiB });
  assert.deepEqual(r, { ok: false, reasons: ['a: memory 512M free < 1G', 'b: not ready'] });
});

test('pins to --node and refuses an unknown one', () => {
  assert.deepEqual(schedule([node('a', 4), node('b', 8)], { cpus: 1, memoryBytes: GiB, diskBytes: GiB, node: 'a' }), { ok: true, node: 'a' });
  assert.deepEqual(schedule([node('a', 4)], { cpus: 1, memoryBytes: GiB, diskBytes: GiB, node: 'zz' }), { ok: false, reasons: ['node zz does not exist'] });
});

test('never places beyond capacity x overcommit (property)', () => {
  const arbNode = fc.record({
    name: fc.string({ minLength: 1, maxLength: 4 }),
    ready: fc.boolean(),
    capacity: fc.record({ cpus: fc.integer({ min: 1, max: 8 }), memoryBytes: fc.integer({ min: 1, max: 64 }).map((g) => g * GiB), diskBytes: fc.constant(100 * GiB) }),
    allocated: fc.record({ cpus: fc.integer({ min: 0, max: 40 }), memoryBytes: fc.integer({ min: 0, max: 64 }).map((g) => g * GiB), diskBytes: fc.constant(0) }),
    vmCount: fc.nat(10),
  });
  fc.assert(
    fc.property(fc.array(arbNode, { maxLength: 6 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 16 }), (nodes, cpus, mem) => {
      const req = { cpus, memoryBytes: mem * GiB, diskBytes: GiB };
      const r = schedule(nodes, req);
      if (!r.ok) return;
      const n = nodes.find((x) => x.name === r.node)!;
      assert.ok(n.ready);
      assert.ok(n.allocated.cpus + cpus <= n.capacity!.cpus * CPU_OVERCOMMIT);
      assert.ok(n.allocated.memoryBytes + req.memoryBytes <= n.capacity!.memoryBytes);
    }),
  );
});
