import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PathModel } from './model.ts';
import { compareResults, planVerify, probePorts, type VerifyInstance } from './verify-plan.ts';

const model: PathModel = {
  services: [
    { network: 'net', name: 'web', block: '10.0.0.16/28' },
    { network: 'net', name: 'db', block: '10.0.0.32/29' },
    { network: 'other', name: 'far', block: '10.0.0.16/28' },
  ],
  paths: [
    { network: 'net', from: { service: 'web' }, to: 'db', proto: 'tcp', ports: [5432, 5432] },
    { network: 'net', from: { cidr: '0.0.0.0/0' }, to: 'web', proto: 'tcp', ports: [80, 81] },
    { network: 'net', from: { service: 'db' }, to: 'db', proto: 'udp', ports: [7946, 7946] },
  ],
};

const instances: VerifyInstance[] = [
  { service: 'web', node: 'n2', ip: '10.0.0.18', mac: '02:00:00:00:00:18' },
  { service: 'web', node: 'n1', ip: '10.0.0.17', mac: '02:00:00:00:00:17' },
  { service: 'web', node: 'n1', ip: '10.0.0.16', mac: '02:00:00:00:00:16' },
  { service: 'db', node: 'n2', ip: '10.0.0.33', mac: '02:00:00:00:00:33' },
  { service: 'far', node: 'n1', ip: '10.0.0.20', mac: '02:00:00:00:00:20' },
];

test('ports probed: the ends of each range, just outside them, and one port no path names', () => {
  assert.deepEqual(probePorts(model, 'net', 'db', 'tcp'), [5431, 5432, 5433, 65000]);
  assert.deepEqual(probePorts(model, 'net', 'db', 'udp'), [7945, 7946, 7947, 65000]);
  assert.deepEqual(probePorts(model, 'net', 'web', 'tcp'), [79, 80, 81, 82, 65000]);
  assert.deepEqual(probePorts(model, 'net', 'web', 'udp'), [65000], 'no udp path: only the unnamed port');
  const wide: PathModel = { services: model.services, paths: [{ network: 'net', from: { service: 'web' }, to: 'db', proto: 'udp', ports: [1, 65535] }] };
  assert.deepEqual(probePorts(wide, 'net', 'db', 'udp'), [1, 65535], 'nothing outside 1..65535, and no port is unnamed');
  const taken: PathModel = { services: model.services, paths: [{ network: 'net', from: { service: 'web' }, to: 'db', proto: 'udp', ports: [64990, 65000] }] };
  assert.deepEqual(probePorts(taken, 'net', 'db', 'tcp'), [64989], 'the unnamed port avoids a range of the other protocol too');
});

test('every ordered pair, each probe on the node of its destination, with the verdict of checkAccess', () => {
  const plan = planVerify(model, 'net', instances);
  assert.deepEqual(plan.skipped, []);
  const key = (p: (typeof plan.probes)[number]) => `${p.node} ${p.from}->${p.to} ${p.src}->${p.dst} ${p.port}/${p.proto} ${p.expect ? 'allow' : 'deny'}`;
  const db = plan.probes.filter((p) => p.to === 'db').map(key);
  assert.deepEqual(db, [
    'n2 db->db 10.0.0.32->10.0.0.33 5431/tcp deny',
    'n2 db->db 10.0.0.32->10.0.0.33 5432/tcp deny',
    'n2 db->db 10.0.0.32->10.0.0.33 5433/tcp deny',
    'n2 db->db 10.0.0.32->10.0.0.33 65000/tcp deny',
    'n2 db->db 10.0.0.32->10.0.0.33 7945/udp deny',
    'n2 db->db 10.0.0.32->10.0.0.33 7946/udp allow',
    'n2 db->db 10.0.0.32->10.0.0.33 7947/udp deny',
    'n2 db->db 10.0.0.32->10.0.0.33 65000/udp deny',
    'n2 web->db 10.0.0.16->10.0.0.33 5431/tcp deny',
    'n2 web->db 10.0.0.16->10.0.0.33 5432/tcp allow',
    'n2 web->db 10.0.0.16->10.0.0.33 5433/tcp deny',
    'n2 web->db 10.0.0.16->10.0.0.33 65000/tcp deny',
    'n2 web->db 10.0.0.16->10.0.0.33 7945/udp deny',
    'n2 web->db 10.0.0.16->10.0.0.33 7946/udp deny',
    'n2 web->db 10.0.0.16->10.0.0.33 7947/udp deny',
    'n2 web->db 10.0.0.16->10.0.0.33 65000/udp deny',
  ]);
  // web runs on two nodes: each is probed on its own rules, at its lowest address there; web
  // probing itself comes from another of its instances.
  const toWeb = plan.probes.filter((p) => p.to === 'web' && p.port === 80);
  assert.deepEqual(toWeb.map(key), [
    'n1 db->web 10.0.0.33->10.0.0.16 80/tcp allow',
    'n2 db->web 10.0.0.33->10.0.0.18 80/tcp allow',
    'n1 web->web 10.0.0.17->10.0.0.16 80/tcp allow',
    'n2 web->web 10.0.0.16->10.0.0.18 80/tcp allow',
  ]);
  assert.ok(!plan.probes.some((p) => p.src === p.dst), 'never from the destination\'s own address');
  assert.ok(!plan.probes.some((p) => p.from === 'far' || p.to === 'far'), 'only the network\'s services');
  assert.deepEqual(plan.batches.map((b) => [b.node, b.probes.length]), [['n1', plan.probes.filter((p) => p.node === 'n1').length], ['n2', plan.probes.filter((p) => p.node === 'n2').length]]);
  assert.equal(plan.probes.find((p) => p.to === 'db' && p.port === 5432 && p.from === 'web')?.because, 'allowed by web -> db:5432/tcp');
  assert.equal(plan.probes.find((p) => p.to === 'db' && p.port === 5433)?.because, 'db -> db:5433/tcp: no path allows it');
});

test('a destination without a running instance is skipped; a one-address block cannot probe itself', () => {
  const one: PathModel = { services: [{ network: 'net', name: 'solo', block: '10.0.0.40/32' }, { network: 'net', name: 'idle', block: '10.0.0.48/29' }], paths: [] };
  const plan = planVerify(one, 'net', [{ service: 'solo', node: 'n1', ip: '10.0.0.40', mac: '02:00:00:00:00:40' }]);
  assert.deepEqual(plan.skipped, [
    { from: 'idle', to: 'idle', reason: 'idle has no running instance' },
    { from: 'solo', to: 'idle', reason: 'idle has no running instance' },
    { from: 'solo', to: 'solo', reason: "solo's block 10.0.0.40/32 has no address but 10.0.0.40, the destination's" },
  ]);
  assert.deepEqual(plan.probes.map((p) => `${p.from}->${p.to} ${p.src} ${p.port}/${p.proto}`), ['idle->solo 10.0.0.48 65000/tcp', 'idle->solo 10.0.0.48 65000/udp'], 'a source needs no running instance: its block speaks for it');
});

test('the report lists exactly the probes the data plane decided otherwise, and nodes that did not answer', () => {
  const plan = planVerify(model, 'net', instances);
  const truth = (node: string) => Object.fromEntries(plan.probes.filter((p) => p.node === node).map((p) => [p.id, p.expect]));
  const agree = compareResults(plan, [
    { node: 'n1', admitted: truth('n1') },
    { node: 'n2', admitted: truth('n2') },
  ]);
  assert.equal(agree.ok, true);
  assert.equal(agree.probed, plan.probes.length);
  assert.deepEqual(agree.disagreements, []);

  const leak = plan.probes.find((p) => p.node === 'n2' && p.from === 'web' && p.to === 'db' && p.port === 5433 && p.proto === 'tcp')!;
  const cut = plan.probes.find((p) => p.node === 'n2' && p.from === 'web' && p.to === 'db' && p.port === 5432 && p.proto === 'tcp')!;
  const report = compareResults(plan, [{ node: 'n2', admitted: { ...truth('n2'), [leak.id]: true, [cut.id]: false } }, { node: 'n1', error: 'nft: permission denied' }]);
  assert.equal(report.ok, false);
  assert.deepEqual(report.disagreements, [
    { node: 'n2', from: 'web', to: 'db', src: '10.0.0.16', dst: '10.0.0.33', port: '5432/tcp', expected: 'allowed', observed: 'dropped', because: 'allowed by web -> db:5432/tcp' },
    { node: 'n2', from: 'web', to: 'db', src: '10.0.0.16', dst: '10.0.0.33', port: '5433/tcp', expected: 'denied', observed: 'admitted', because: 'web -> db:5433/tcp: no path allows it' },
  ]);
  assert.deepEqual(report.unanswered, [{ node: 'n1', probes: plan.batches[0]!.probes.length, reason: 'nft: permission denied' }]);
  assert.equal(report.probed, plan.batches[1]!.probes.length);

  const { [leak.id]: _, ...partial } = truth('n2');
  const missing = compareResults(plan, [{ node: 'n1', admitted: truth('n1') }, { node: 'n2', admitted: partial }]);
  assert.equal(missing.ok, false, 'a probe left out is not taken for dropped');
  assert.deepEqual(missing.unanswered, [{ node: 'n2', probes: 1, reason: `no result for probe ${leak.id}` }]);
});

test('a destination whose instances sleep (scale to zero) is skipped as suspended, not probed: a probe would wake it', () => {
  const one: PathModel = { services: [{ network: 'net', name: 'solo', block: '10.0.0.40/29' }, { network: 'net', name: 'sleepy', block: '10.0.0.48/29' }], paths: [] };
  const plan = planVerify(one, 'net', [{ service: 'solo', node: 'n1', ip: '10.0.0.40', mac: '02:00:00:00:00:40' }], new Set(['sleepy']));
  assert.deepEqual(
    plan.skipped.filter((s) => s.to === 'sleepy'),
    [
      { from: 'sleepy', to: 'sleepy', reason: 'sleepy is suspended (scaled to zero): a probe would wake it' },
      { from: 'solo', to: 'sleepy', reason: 'sleepy is suspended (scaled to zero): a probe would wake it' },
    ],
  );
  assert.ok(plan.probes.every((p) => p.to !== 'sleepy'));
});
