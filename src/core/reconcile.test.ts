import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { DesiredVm } from '../api/schemas/desired.ts';
import { plan, type Applied, type Observed } from './reconcile.ts';

const vm = (id: string, power: DesiredVm['power'], restartGen = 0, restart: DesiredVm['restart'] = 'on-failure'): DesiredVm => ({
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
  restart,
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

test('a VM whose QEMU was killed at its generation is restarted under on-failure, and the restart says why', () => {
  const ops = plan([vm('a', 'running', 1)], [{ id: 'a', running: false, exit: 'killed' }], { a: { gen: 1 } }, 1000);
  assert.deepEqual(ops.map((o) => [o.kind, o.kind === 'start' && o.restart]), [['start', { n: 1, reason: 'restarted after crash (1): qemu was killed (by a signal, the OOM killer, or a crash)' }]]);
});

test('a guest poweroff under on-failure, and a kill under never, stay stopped with the reason noted once', () => {
  assert.deepEqual(plan([vm('a', 'running', 1)], [{ id: 'a', running: false, exit: 'poweroff' }], { a: { gen: 1 } }), [{ kind: 'note', id: 'a', reason: 'guest poweroff' }]);
  assert.deepEqual(plan([vm('a', 'running', 1)], [{ id: 'a', running: false, exit: 'poweroff' }], { a: { gen: 1, note: 'guest poweroff' } }), []);
  const never = plan([vm('a', 'running', 1, 'never')], [{ id: 'a', running: false, exit: 'killed' }], { a: { gen: 1 } });
  assert.deepEqual(never.map((o) => o.kind), ['note']);
  // always: a guest poweroff is restarted too.
  assert.deepEqual(plan([vm('a', 'running', 1, 'always')], [{ id: 'a', running: false, exit: 'poweroff' }], { a: { gen: 1 } }).map((o) => o.kind), ['start']);
});

test('restarts back off, and stop at the cap (crash loop); a new generation starts afresh', () => {
  const t0 = 1_000_000;
  const waiting = plan([vm('a', 'running', 1)], [{ id: 'a', running: false, exit: 'killed' }], { a: { gen: 1, restarts: [t0] } }, t0 + 1000);
  assert.deepEqual(waiting.map((o) => o.kind), ['note'], 'the second restart waits for its backoff');
  const five = [t0, t0 + 10_000, t0 + 30_000, t0 + 70_000, t0 + 150_000];
  const loop = plan([vm('a', 'running', 1)], [{ id: 'a', running: false, exit: 'killed' }], { a: { gen: 1, restarts: five } }, t0 + 400_000);
  assert.equal(loop.length, 1);
  assert.match(loop[0]!.kind === 'note' ? loop[0]!.reason : '', /^crash loop/);
  // vm start bumps the generation: a plain start, no restart count.
  assert.deepEqual(plan([vm('a', 'running', 2)], [{ id: 'a', running: false, exit: 'killed' }], { a: { gen: 1, restarts: five } }, t0 + 400_000), [{ kind: 'start', vm: vm('a', 'running', 2) }]);
});

test('a newer generation restarts a running VM', () => {
  assert.deepEqual(plan([vm('a', 'running', 2)], [{ id: 'a', running: true }], { a: { gen: 1 } }).map((o) => o.kind), ['restart']);
});

test('plan is idempotent: applying its ops leaves nothing to do (property)', () => {
  const arb = fc.array(
    fc.record({
      power: fc.constantFrom('running', 'stopped', 'deleted') as fc.Arbitrary<DesiredVm['power']>,
      gen: fc.nat(3),
      running: fc.boolean(),
      present: fc.boolean(),
      applied: fc.option(fc.nat(3)),
      restart: fc.constantFrom('always', 'on-failure', 'never') as fc.Arbitrary<DesiredVm['restart']>,
      exit: fc.constantFrom(undefined, 'poweroff', 'killed', 'exited') as fc.Arbitrary<Observed['exit']>,
      restarts: fc.array(fc.nat(1_000_000), { maxLength: 6 }),
    }),
    { maxLength: 8 },
  );
  fc.assert(
    fc.property(arb, (rows) => {
      const now = 1_000_000;
      const desired = rows.map((r, i) => vm(String(i), r.power, r.gen, r.restart));
      let observed: Observed[] = rows.flatMap((r, i) => (r.present ? [{ id: String(i), running: r.running, ...(r.running || r.exit === undefined ? {} : { exit: r.exit }) }] : []));
      const applied: Record<string, Applied> = Object.fromEntries(rows.flatMap((r, i) => (r.applied === null ? [] : [[String(i), { gen: r.applied, restarts: r.restarts }]])));
      // Simulate applying the plan.
      for (const op of plan(desired, observed, applied, now)) {
        if (op.kind === 'note') applied[op.id] = { ...applied[op.id]!, note: op.reason };
        if (op.kind === 'start' && op.restart) applied[op.vm.id] = { ...applied[op.vm.id]!, restarts: [...(applied[op.vm.id]!.restarts ?? []), now] };
        if (op.kind === 'destroy') observed = observed.filter((o) => o.id !== op.id);
        if (op.kind === 'stop') observed = observed.map((o) => (o.id === op.id ? { ...o, running: false } : o));
        if (op.kind === 'start' || op.kind === 'restart') {
          observed = [...observed.filter((o) => o.id !== op.vm.id), { id: op.vm.id, running: true }];
          if (applied[op.vm.id]?.gen !== op.vm.restartGen) applied[op.vm.id] = { gen: op.vm.restartGen };
        }
      }
      assert.deepEqual(plan(desired, observed, applied, now), []);
    }),
  );
});

test('suspend (issue 16): a running VM told `suspended` is suspended; one not running is left as it is', () => {
  const ops = plan([vm('a', 'suspended', 2), vm('b', 'suspended', 2), vm('c', 'suspended', 2)], [{ id: 'a', running: true }, { id: 'b', running: false, suspended: true }, { id: 'c', running: false }], { a: { gen: 2 }, b: { gen: 2 }, c: { gen: 2 } });
  assert.deepEqual(ops, [{ kind: 'suspend', id: 'a' }]);
});

test('resume: a saved VM told to run is resumed at its generation (no new one: it does not boot), never cold-started', () => {
  const d = vm('a', 'running', 2);
  assert.deepEqual(plan([d], [{ id: 'a', running: false, suspended: true }], { a: { gen: 2 } }), [{ kind: 'resume', vm: d }]);
  // After an agent that lost its record (a new boot id) too: the saved state is what the VM is.
  assert.deepEqual(plan([d], [{ id: 'a', running: false, suspended: true }], {}), [{ kind: 'resume', vm: d }]);
});

test('a suspended VM told to stop has its memory state discarded; a deleted one is destroyed with it', () => {
  assert.deepEqual(plan([vm('a', 'stopped', 2)], [{ id: 'a', running: false, suspended: true }], { a: { gen: 2 } }), [{ kind: 'discard', id: 'a' }]);
  assert.deepEqual(plan([vm('a', 'deleted', 2)], [{ id: 'a', running: false, suspended: true }], { a: { gen: 2 } }), [{ kind: 'destroy', id: 'a' }]);
});

test('scale to zero: a VM the agent suspended for idleness (power running) is held, not resumed, until woken', () => {
  const d = { ...vm('a', 'running', 2), idleStop: '10s', wakeGen: 0 };
  const saved: Observed[] = [{ id: 'a', running: false, suspended: true }];
  assert.deepEqual(plan([d], saved, { a: { gen: 2, idle: { reason: 'idle for 10s', wakeGen: 0 } } }), [], 'the activator holds it');
  // `vm resume` of it bumps its wake generation: resumed.
  assert.deepEqual(plan([{ ...d, wakeGen: 1 }], saved, { a: { gen: 2, idle: { reason: 'idle for 10s', wakeGen: 0 } } }), [{ kind: 'resume', vm: { ...d, wakeGen: 1 } }]);
  // A user's `vm suspend` and `vm stop` of it act as on any saved VM.
  assert.deepEqual(plan([{ ...d, power: 'suspended' }], saved, { a: { gen: 2, idle: { reason: 'idle for 10s', wakeGen: 0 } } }), []);
  assert.deepEqual(plan([{ ...d, power: 'stopped' }], saved, { a: { gen: 2, idle: { reason: 'idle for 10s', wakeGen: 0 } } }), [{ kind: 'discard', id: 'a' }]);
});
