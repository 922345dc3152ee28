import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { newestFirst, planRollout, type RolloutInstance } from './rollout-plan.ts';

const inst = (name: string, revision: number, state = 'running', createdMs = 0, index = Number(name.split('-')[1])): RolloutInstance => ({ name, index, revision, state, reason: state === 'error' ? 'boom' : null, createdMs });
const plan = (instances: RolloutInstance[], nowMs = 1000) => planRollout({ instances, target: 2, count: 2, nowMs, timeoutMs: 60_000 });

test('each step of a rolling update of two instances', () => {
  const a = inst('w-0', 1, 'running', 1), b = inst('w-1', 1, 'running', 2);
  assert.deepEqual(plan([a, b]), { kind: 'create' });
  assert.deepEqual(plan([a, b, inst('w-2', 2, 'booting', 10)]), { kind: 'wait', name: 'w-2' });
  assert.deepEqual(plan([a, b, inst('w-2', 2, 'running', 10)]), { kind: 'delete', name: 'w-0' }, 'the oldest goes first');
  assert.deepEqual(plan([b, inst('w-2', 2, 'running', 10)]), { kind: 'create' });
  assert.deepEqual(plan([b, inst('w-2', 2, 'running', 10), inst('w-0', 2, 'pending', 20)]), { kind: 'wait', name: 'w-0' });
  assert.deepEqual(plan([b, inst('w-2', 2, 'running', 10), inst('w-0', 2, 'running', 20)]), { kind: 'delete', name: 'w-1' });
  assert.deepEqual(plan([inst('w-2', 2, 'running', 10), inst('w-0', 2, 'running', 20)]), { kind: 'done' });
});

test('the first failing replacement stops the rollout, by error or by timeout', () => {
  const a = inst('w-0', 1, 'running', 1), b = inst('w-1', 1, 'running', 2);
  assert.deepEqual(plan([a, b, inst('w-2', 2, 'error', 10)]), { kind: 'failed', name: 'w-2', reason: 'boom' });
  const slow = plan([a, b, inst('w-2', 2, 'booting', 10)], 10 + 60_001);
  assert.equal(slow.kind, 'failed');
  assert.match((slow as { reason: string }).reason, /not running after 60 s \(booting\)/);
});

test('property: a step never takes away a running instance unless a replacement runs', () => {
  const arb = fc.array(fc.record({ revision: fc.constantFrom(1, 2), state: fc.constantFrom('running', 'booting', 'pending', 'error'), createdMs: fc.integer({ min: 0, max: 100 }) }), { maxLength: 6 });
  fc.assert(
    fc.property(arb, fc.integer({ min: 1, max: 4 }), (rows, count) => {
      const instances = rows.map((r, i) => ({ ...r, name: `w-${i}`, index: i, reason: null }));
      const step = planRollout({ instances, target: 2, count, nowMs: 200, timeoutMs: 60_000 });
      const running = instances.filter((i) => i.state === 'running').length;
      if (step.kind === 'delete') {
        const gone = instances.find((i) => i.name === step.name)!;
        assert.notEqual(gone.revision, 2, 'only an old instance is deleted');
        assert.ok(instances.filter((i) => i.revision === 2).every((i) => i.state === 'running'), 'only once every replacement runs');
        assert.ok(instances.length > count, 'only beyond the count');
        assert.ok(running - (gone.state === 'running' ? 1 : 0) >= Math.min(running, count), 'never fewer running than wanted');
      }
      if (step.kind === 'done') assert.ok(instances.every((i) => i.revision === 2 && i.state === 'running'));
      if (step.kind === 'failed') assert.equal(instances.find((i) => i.name === step.name)!.revision, 2, 'only a replacement fails the rollout');
    }),
  );
});

test('scale-down picks the newest first', () => {
  const xs = [inst('w-0', 1, 'running', 5), inst('w-1', 1, 'running', 9), inst('w-2', 1, 'running', 7), inst('w-3', 1, 'running', 9)];
  assert.deepEqual(newestFirst(xs, 2).map((i) => i.name), ['w-3', 'w-1']);
  assert.deepEqual(newestFirst(xs, 0), []);
});
