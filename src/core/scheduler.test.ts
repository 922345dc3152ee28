import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PlacementIndex } from './placement-index.ts';
import { allocatable, DEFAULT_RATIOS, schedule, summarizeReasons, type NodeSnapshot, type PlacementRequest } from './scheduler.ts';
import { GiB } from './units.ts';

const node = (name: string, memGiB: number, o: Partial<NodeSnapshot> = {}): NodeSnapshot => ({
  name,
  ready: true,
  cordoned: false,
  group: 'default',
  zone: 'z1',
  labels: {},
  capacity: { cpus: 2, memoryBytes: memGiB * GiB, diskBytes: 100 * GiB },
  reserved: { cpus: 0, memoryBytes: 0, diskBytes: 0 },
  ratios: DEFAULT_RATIOS,
  allocated: { cpus: 0, memoryBytes: 0, diskBytes: 0 },
  vmCount: 0,
  spread: {},
  ...o,
});
const req = (memGiB: number, o: Partial<PlacementRequest> = {}): PlacementRequest => ({ cpus: 1, memoryBytes: memGiB * GiB, diskBytes: GiB, ...o });
const used = (memGiB: number, cpus = 0) => ({ cpus, memoryBytes: memGiB * GiB, diskBytes: 0 });

test('explains per node why nothing fits', () => {
  const r = schedule([node('a', 4, { allocated: used(3.5) }), node('b', 8, { ready: false }), node('c', 8, { cordoned: true })], req(1));
  assert.deepEqual(r, { ok: false, reasons: ['a: memory 512M free < 1G', 'b: not ready', 'c: cordoned'], kinds: ['not_ready', 'cordoned', 'memory'] });
});

test('reserved memory is not allocatable; CPUs overcommit by the group ratio', () => {
  const n = node('a', 4, { reserved: { cpus: 1, memoryBytes: GiB, diskBytes: 0 } });
  assert.deepEqual(allocatable(n), { cpus: 4, memoryBytes: 3 * GiB, diskBytes: 100 * GiB });
  assert.equal(schedule([n], req(3.5)).ok, false);
  assert.equal(schedule([node('a', 64, { allocated: used(0, 8) })], req(1)).ok, false, '2 cpus × 4 = 8 are taken');
});

test('constraints: node, group, zone, labels', () => {
  const nodes = [node('a', 8, { group: 'gpu', zone: 'z1', labels: { disk: 'ssd' } }), node('b', 16, { zone: 'z2' })];
  const pick = (o: Partial<PlacementRequest>) => {
    const r = schedule(nodes, req(1, o));
    return r.ok ? r.node : r.reasons.join('; ');
  };
  assert.equal(pick({ node: 'a' }), 'a');
  assert.equal(pick({ group: 'gpu' }), 'a');
  assert.equal(pick({ zone: 'z2' }), 'b');
  assert.equal(pick({ labels: { disk: 'ssd' } }), 'a');
  assert.equal(pick({ labels: { disk: 'hdd' } }), 'a: label disk=hdd missing; b: label disk=hdd missing');
  assert.equal(pick({ node: 'zz' }), 'node zz does not exist');
  assert.equal(pick({ group: 'none' }), 'a: group gpu ≠ none; b: group default ≠ none');
});

test('spread picks the emptiest node; binpack the fullest that fits', () => {
  const nodes = [node('a', 8, { allocated: used(6) }), node('b', 8, { allocated: used(1) }), node('c', 8, { allocated: used(7.5) })];
  assert.deepEqual(schedule(nodes, req(1)), { ok: true, node: 'b', warnings: [] });
  assert.deepEqual(schedule(nodes, req(1, { policy: 'binpack' })), { ok: true, node: 'a', warnings: [] });
});

test('--force goes beyond overcommit with a warning, never beyond the host', () => {
  const n = node('a', 4, { ratios: { cpu: 1, memory: 0.5, disk: 1 } });
  assert.equal(schedule([n], req(3)).ok, false);
  assert.deepEqual(schedule([n], req(3, { force: true })), { ok: true, node: 'a', warnings: ['placed beyond overcommit with --force: a: memory 2G free < 3G'] });
  assert.equal(schedule([n], req(5, { force: true })).ok, false);
});

test('anti-affinity spreads a key across zones first, then nodes', () => {
  let nodes = [node('a1', 8, { zone: 'z1' }), node('a2', 8, { zone: 'z1' }), node('b1', 8, { zone: 'z2' })];
  const placed: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = schedule(nodes, req(1, { spreadKey: 'web', policy: 'binpack' }));
    assert.ok(r.ok);
    placed.push(r.node);
    nodes = nodes.map((n) => (n.name === r.node ? { ...n, allocated: used(n.allocated.memoryBytes / GiB + 1), vmCount: n.vmCount + 1, spread: { web: (n.spread.web ?? 0) + 1 } } : n));
  }
  assert.equal(new Set(placed).size, 3, `one per node even under binpack: ${placed}`);
  assert.notEqual(nodes.find((n) => n.name === placed[0])!.zone, nodes.find((n) => n.name === placed[1])!.zone, 'the first two go to different zones');
});

const arbNode = fc.record({
  name: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
  ready: fc.boolean(),
  cordoned: fc.boolean(),
  group: fc.constantFrom('g1', 'g2'),
  zone: fc.constantFrom('z1', 'z2'),
  labels: fc.dictionary(fc.constantFrom('disk', 'arch'), fc.constantFrom('ssd', 'hdd')),
  capacity: fc.record({ cpus: fc.integer({ min: 1, max: 8 }), memoryBytes: fc.integer({ min: 1, max: 64 }).map((g) => g * GiB), diskBytes: fc.constant(100 * GiB) }),
  reserved: fc.record({ cpus: fc.integer({ min: 0, max: 1 }), memoryBytes: fc.integer({ min: 0, max: 2 }).map((g) => g * GiB), diskBytes: fc.constant(0) }),
  ratios: fc.record({ cpu: fc.constantFrom(1, 2, 4), memory: fc.constantFrom(0.5, 1, 1.5), disk: fc.constant(1) }),
  allocated: fc.record({ cpus: fc.integer({ min: 0, max: 40 }), memoryBytes: fc.integer({ min: 0, max: 64 }).map((g) => g * GiB), diskBytes: fc.constant(0) }),
  vmCount: fc.nat(10),
  spread: fc.dictionary(fc.constant('web'), fc.nat(3)),
});
const arbReq = fc.record({
  cpus: fc.integer({ min: 1, max: 8 }),
  memoryBytes: fc.integer({ min: 1, max: 16 }).map((g) => g * GiB),
  diskBytes: fc.constant(GiB),
  group: fc.option(fc.constantFrom('g1', 'g2'), { nil: undefined }),
  zone: fc.option(fc.constantFrom('z1', 'z2'), { nil: undefined }),
  labels: fc.option(fc.dictionary(fc.constantFrom('disk', 'arch'), fc.constantFrom('ssd', 'hdd'), { maxKeys: 1 }), { nil: undefined }),
  policy: fc.constantFrom('spread', 'binpack') as fc.Arbitrary<'spread' | 'binpack'>,
  spreadKey: fc.option(fc.constant('web'), { nil: undefined }),
  force: fc.boolean(),
});

test('never exceeds capacity × ratio (unless forced, and then never the host), respects every constraint (property)', () => {
  fc.assert(
    fc.property(fc.uniqueArray(arbNode, { selector: (n) => n.name, maxLength: 5 }), arbReq, (nodes, r) => {
      const p = schedule(nodes, r);
      if (!p.ok) {
        assert.ok(p.reasons.length > 0);
        return;
      }
      const n = nodes.find((x) => x.name === p.node)!;
      assert.ok(n.ready && !n.cordoned);
      if (r.group) assert.equal(n.group, r.group);
      if (r.zone) assert.equal(n.zone, r.zone);
      for (const [k, v] of Object.entries(r.labels ?? {})) assert.equal(n.labels[k], v);
      const host = n.capacity!;
      const limit = r.force && p.warnings.length ? { cpus: host.cpus - n.reserved.cpus, memoryBytes: host.memoryBytes - n.reserved.memoryBytes, diskBytes: host.diskBytes } : allocatable(n);
      const unlimited = r.force && p.warnings.length;
      if (!unlimited) {
        assert.ok(n.allocated.cpus + r.cpus <= limit.cpus);
        assert.ok(n.allocated.memoryBytes + r.memoryBytes <= limit.memoryBytes);
      } else {
        assert.ok(r.cpus <= limit.cpus && r.memoryBytes <= limit.memoryBytes, 'a forced VM still fits the host on its own');
      }
      assert.equal(p.warnings.length > 0, !!r.force && !nodes.some((x) => x.name === p.node && allocatable(x).memoryBytes - x.allocated.memoryBytes >= r.memoryBytes && allocatable(x).cpus - x.allocated.cpus >= r.cpus));
    }),
    { numRuns: 500 },
  );
});

test('spread policy: the chosen node is at least as free as any other that fits (property)', () => {
  fc.assert(
    fc.property(fc.uniqueArray(arbNode, { selector: (n) => n.name, minLength: 1, maxLength: 5 }), (nodes) => {
      const r = { cpus: 1, memoryBytes: GiB, diskBytes: GiB };
      const p = schedule(nodes, r);
      if (!p.ok || p.warnings.length) return;
      const free = (n: NodeSnapshot) => (allocatable(n).memoryBytes - n.allocated.memoryBytes - r.memoryBytes) / allocatable(n).memoryBytes;
      const chosen = nodes.find((n) => n.name === p.node)!;
      for (const n of nodes) {
        const fitsToo = n.ready && !n.cordoned && allocatable(n).cpus - n.allocated.cpus >= 1 && allocatable(n).memoryBytes - n.allocated.memoryBytes >= GiB;
        if (fitsToo) assert.ok(free(chosen) >= free(n), `${chosen.name} chosen over freer ${n.name}`);
      }
    }),
    { numRuns: 300 },
  );
});

test('the placement index decides exactly as schedule(), placement after placement (property)', () => {
  const arbStep = fc.record({
    req: arbReq,
    node: fc.option(fc.constantFrom('a', 'b', 'c', 'f'), { nil: undefined }),
    exclude: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: undefined }),
  });
  fc.assert(
    fc.property(fc.uniqueArray(arbNode, { selector: (n) => n.name, maxLength: 5 }), fc.array(arbStep, { maxLength: 12 }), (start, steps) => {
      let reference: NodeSnapshot[] = structuredClone(start);
      const index = new PlacementIndex(structuredClone(start));
      for (const { req: r0, node: pin, exclude } of steps) {
        const r = { ...r0, node: pin };
        const want = schedule(reference.filter((n) => n.name !== exclude), r);
        assert.deepEqual(index.schedule(r, exclude), want);
        if (!want.ok) continue;
        index.place(want.node, r, r.spreadKey);
        reference = reference.map((n) =>
          n.name !== want.node
            ? n
            : {
                ...n,
                allocated: { cpus: n.allocated.cpus + r.cpus, memoryBytes: n.allocated.memoryBytes + r.memoryBytes, diskBytes: n.allocated.diskBytes + r.diskBytes },
                vmCount: n.vmCount + 1,
                spread: r.spreadKey ? { ...n.spread, [r.spreadKey]: (n.spread[r.spreadKey] ?? 0) + 1 } : n.spread,
              },
        );
        assert.deepEqual(index.nodes, reference, 'the index keeps its snapshots patched');
      }
    }),
    { numRuns: 500 },
  );
});

test('summarizeReasons lists a few nodes and counts the rest by kind', () => {
  const reasons = [...Array.from({ length: 10 }, (_, i) => `n${i}: not ready`), 'n10: not ready', 'n11: memory 1G free < 2G', 'n12: group a ≠ b'];
  assert.equal(summarizeReasons(reasons.slice(0, 3)), 'n0: not ready; n1: not ready; n2: not ready');
  assert.match(summarizeReasons(reasons), /n9: not ready; and 3 more nodes \(1 not ready, 1 memory, 1 group\)$/);
});
