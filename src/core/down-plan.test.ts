import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planDown, ourRules, UNIT_DATA_DIR, type DownObserved } from './down-plan.ts';

const RULES = { priorities: [1000, 1001], minTable: 0x10000000 };

const nothing: DownObserved = { dataDir: '/srv/butter', vms: [], dnsmasq: [], namespaces: [], links: [], rules: [], hostRoutes: [], nftTables: [], dataDirExists: false };

const host: DownObserved = {
  ...nothing,
  up: { pid: 42 },
  vms: ['a1b2c3'],
  dnsmasq: [{ pid: 50, network: 'default' }],
  namespaces: ['butter-abc-default'],
  links: [
    { name: 'bt-default', kind: 'bridge', addrs: [] },
    { name: 'bta1b2c30', kind: 'tun', addrs: [] },
    { name: 'btudefault', kind: 'veth', addrs: ['100.126.0.1'] },
    { name: 'btxdefault', kind: 'vxlan', addrs: [] },
  ],
  mesh: { iface: 'btwg0', wireguardGo: 77 },
  rules: [
    { priority: 1001, from: '100.126.0.1/32', table: 0x20000001 },
    { priority: 1000, iif: 'btwg0', from: '10.200.0.9/32', table: 0x10000001 },
    // Another agent's (its uplink address is on no interface of ours), and not Butter's at all.
    { priority: 1001, from: '100.126.0.5/32', table: 0x20000003 },
    { priority: 1000, iif: 'eth0', table: 0x10000002 },
    { priority: 1001, from: '100.126.0.1/32', table: 100 },
  ],
  hostRoutes: [
    { dst: '10.200.0.0/16', dev: 'btudefault' },
    { dst: '10.9.0.0/16', dev: 'eth9' },
  ],
  nftTables: ['inet butter', 'bridge butter'],
  runDir: '/run/butter/agent-abc',
  dataDirExists: true,
};

const names = (p: ReturnType<typeof planDown>) => p.steps.map((s) => `${s.kind} ${s.name}`);

test('nothing observed: nothing to do', () => {
  assert.deepEqual(planDown(nothing, { purge: false, rules: RULES }), { steps: [], kept: [] });
  assert.deepEqual(planDown(nothing, { purge: true, rules: RULES }), { steps: [], kept: [] });
});

test('everything, in order: butter up, VMs, dnsmasq, namespaces, rules, links (taps before bridges), mesh, nft, /run', () => {
  const p = planDown(host, { purge: false, rules: RULES });
  assert.deepEqual(names(p), [
    'butter-up pid 42',
    'vm a1b2c3',
    'dnsmasq default',
    'namespace butter-abc-default',
    'rule priority 1001 from 100.126.0.1/32 lookup 536870913',
    'rule priority 1000 iif btwg0 from 10.200.0.9/32 lookup 268435457',
    'route 10.200.0.0/16',
    'table 268435457',
    'table 536870913',
    'link bta1b2c30',
    'link btxdefault',
    'link btudefault',
    'link bt-default',
    'mesh btwg0',
    'nft-table inet butter',
    'nft-table bridge butter',
    'run-dir /run/butter/agent-abc',
  ]);
  assert.deepEqual(p.kept, [{ what: '/srv/butter', why: 'the data dir (VM disks, the database, keys): --purge removes it' }]);
});

test('--purge adds the data dir, and the config only when it logs in to this Butter', () => {
  const ours = planDown({ ...host, config: { path: '/root/.config/butter/config.json', ours: true } }, { purge: true, rules: RULES });
  assert.deepEqual(names(ours).slice(-2), ['config /root/.config/butter/config.json', 'data-dir /srv/butter']);
  assert.deepEqual(ours.kept, []);
  const other = planDown({ ...host, config: { path: '/root/.config/butter/config.json', ours: false } }, { purge: true, rules: RULES });
  assert.deepEqual(names(other).slice(-1), ['data-dir /srv/butter']);
  assert.deepEqual(other.kept, [{ what: '/root/.config/butter/config.json', why: 'it logs the CLI in to another control plane' }]);
  // Without --purge neither is touched.
  assert.ok(!names(planDown({ ...host, config: { path: '/c', ours: true } }, { purge: false, rules: RULES })).some((n) => /^(config|data-dir)/.test(n)));
});

test('rules are ours only at our priorities and tables, naming our interfaces or addresses', () => {
  assert.deepEqual(
    ourRules(host, RULES).map((r) => r.table),
    [0x20000001, 0x10000001],
  );
  // Without the mesh interface observed, a rule on it is no longer told ours.
  const { mesh: _m, ...noMesh } = host;
  assert.deepEqual(
    ourRules(noMesh, RULES).map((r) => r.table),
    [0x20000001],
  );
});

test('the systemd unit: when it runs this butter up, or would start one on its data dir', () => {
  const unit = (u: DownObserved['unit'], o: Partial<DownObserved> = {}) => names(planDown({ ...nothing, ...o, ...(u ? { unit: u } : {}) }, { purge: false, rules: RULES }));
  assert.deepEqual(unit({ active: true, enabled: true, mainPid: 42 }, { up: { pid: 42 } }), ['unit butter-up.service', 'butter-up pid 42']);
  assert.deepEqual(unit({ active: false, enabled: true, mainPid: 0 }, { dataDir: UNIT_DATA_DIR }), ['unit butter-up.service']);
  // Another data dir's `down` leaves the unit (and the up it runs) alone.
  assert.deepEqual(unit({ active: true, enabled: true, mainPid: 7 }, { up: { pid: 42 } }), ['butter-up pid 42']);
  assert.deepEqual(unit({ active: false, enabled: false, mainPid: 0 }, { dataDir: UNIT_DATA_DIR }), []);
});

test("nft tables are named, not marked: only where something else of this Butter is (a mistyped --data-dir takes no one's firewall)", () => {
  const tablesOnly = planDown({ ...nothing, nftTables: ['inet butter'] }, { purge: false, rules: RULES });
  assert.deepEqual(tablesOnly.steps, []);
  assert.match(tablesOnly.kept[0]!.why, /another Butter's/);
  assert.deepEqual(names(planDown({ ...nothing, nftTables: ['inet butter'], runDir: '/run/butter/agent-abc' }, { purge: false, rules: RULES })), ['nft-table inet butter', 'run-dir /run/butter/agent-abc']);
});
