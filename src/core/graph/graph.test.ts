import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildGraph, type GraphInput } from './model.ts';
import { dotString, renderDot } from './dot.ts';

// Given out of order on purpose: the graph sorts.
const input: GraphInput = {
  networks: [
    { name: 'lab', cidr: '10.30.0.0/16' },
    { name: 'dev', cidr: '10.20.0.0/16' },
    { name: 'empty', cidr: '10.40.0.0/16' },
  ],
  services: [
    { name: 'web', network: 'dev', running: 2, total: 3 },
    { name: 'db', network: 'dev', running: 1, total: 1 },
    { name: 'dns', network: 'lab', running: 0, total: 2 },
  ],
  paths: [
    { network: 'dev', from: { service: 'web' }, to: 'db', proto: 'tcp', ports: [5432, 5432] },
    { network: 'dev', from: { cidr: '192.168.1.0/24' }, to: 'web', proto: 'tcp', ports: [8000, 8100] },
    { network: 'dev', from: { cidr: '0.0.0.0/0' }, to: 'web', proto: 'tcp', ports: [443, 443] },
    { network: 'dev', from: { cidr: '0.0.0.0/0' }, to: 'web', proto: 'tcp', ports: [80, 80] },
    { network: 'lab', from: { service: 'dns' }, to: 'dns', proto: 'udp', ports: [53, 53] },
    { network: 'lab', from: { cidr: '192.168.1.0/24' }, to: 'dns', proto: 'udp', ports: [53, 53] },
  ],
};

test('the golden DOT text: a cluster per network, services with instance counts, the internet and CIDRs outside, edges labelled proto:port', () => {
  assert.equal(
    renderDot(buildGraph(input)),
    `digraph butter {
  rankdir=LR;
  fontname="Helvetica";
  node [fontname="Helvetica"];
  edge [fontname="Helvetica"];
  "internet" [label="internet\\n0.0.0.0/0", shape=doubleoctagon];
  "cidr:192.168.1.0/24" [label="192.168.1.0/24", shape=ellipse];
  subgraph "cluster_dev" {
    label="dev (10.20.0.0/16)";
    "service:db" [label="db\\n1/1 running", shape=box, style=rounded];
    "service:web" [label="web\\n2/3 running", shape=box, style=rounded];
  }
  subgraph "cluster_empty" {
    label="empty (10.40.0.0/16)";
    "empty:empty" [label="(no services)", shape=plaintext];
  }
  subgraph "cluster_lab" {
    label="lab (10.30.0.0/16)";
    "service:dns" [label="dns\\n0/2 running", shape=box, style=rounded];
  }
  "internet" -> "service:web" [label="tcp:80"];
  "internet" -> "service:web" [label="tcp:443"];
  "cidr:192.168.1.0/24" -> "service:web" [label="tcp:8000-8100"];
  "service:web" -> "service:db" [label="tcp:5432"];
  "cidr:192.168.1.0/24" -> "service:dns" [label="udp:53"];
  "service:dns" -> "service:dns" [label="udp:53"];
}
`,
  );
});

test('one network: its cluster, its services, its paths and only the CIDRs they admit', () => {
  const g = buildGraph(input, 'lab');
  assert.deepEqual(
    g.clusters.map((c) => [c.network, c.nodes]),
    [['lab', ['service:dns']]],
  );
  assert.deepEqual(
    g.nodes.map((n) => n.id),
    ['cidr:192.168.1.0/24', 'service:dns'],
  );
  assert.deepEqual(
    g.edges.map((e) => `${e.from} -> ${e.to} ${e.label}`),
    ['cidr:192.168.1.0/24 -> service:dns udp:53', 'service:dns -> service:dns udp:53'],
  );
  assert.deepEqual(g.nodes[1]!.instances, { running: 0, total: 2 });
});

test('the same state in any order gives the same graph and the same text', () => {
  const shuffled: GraphInput = { networks: [...input.networks].reverse(), services: [...input.services].reverse(), paths: [...input.paths].reverse() };
  assert.deepEqual(buildGraph(shuffled), buildGraph(input));
  assert.equal(renderDot(buildGraph(shuffled)), renderDot(buildGraph(input)));
});

test('a path naming a service that is not listed keeps its edge, drawn dashed and marked', () => {
  const g = buildGraph({ networks: [{ name: 'dev', cidr: '10.20.0.0/16' }], services: [], paths: [{ network: 'dev', from: { service: 'gone' }, to: 'gone', proto: 'tcp', ports: [1, 1] }] });
  assert.deepEqual(g.nodes, [{ id: 'service:gone', kind: 'service', label: 'gone\n(no such service)', network: 'dev', cidr: null, instances: null }]);
  assert.match(renderDot(g), /"service:gone" \[label="gone\\n\(no such service\)", shape=box, style="rounded,dashed"\];/);
});

test('ids and labels are quoted with quotes, backslashes and line breaks escaped: nothing can close the string', () => {
  assert.equal(dotString('a"b'), '"a\\"b"');
  assert.equal(dotString('a\\N'), '"a\\\\N"');
  assert.equal(dotString('x\ny\r\nz'), '"x\\ny\\nz"');
  assert.equal(dotString('<b>x</b>'), '"<b>x</b>"');
  // A name made to break out: still one quoted id, and the rest of the line is the fixed attributes.
  const dot = renderDot(buildGraph({ networks: [{ name: 'n"; evil [x', cidr: '10.0.0.0/8' }], services: [{ name: 'w"]; "x" -> "y', network: 'n"; evil [x', running: 1, total: 1 }], paths: [] }));
  assert.ok(dot.includes('subgraph "cluster_n\\"; evil [x" {'), dot);
  assert.ok(dot.includes('"service:w\\"]; \\"x\\" -> \\"y" [label="w\\"]; \\"x\\" -> \\"y\\n1/1 running", shape=box, style=rounded];'), dot);
});

test('a service scaled to zero is drawn suspended, not down; one partly asleep says how many', () => {
  const g = buildGraph({
    networks: [{ name: 'dev', cidr: '10.20.0.0/16' }],
    services: [
      { name: 'sleepy', network: 'dev', running: 0, total: 1, suspended: 1 },
      { name: 'half', network: 'dev', running: 1, total: 2, suspended: 1 },
      { name: 'down', network: 'dev', running: 0, total: 1 },
    ],
    paths: [],
  });
  const byName = new Map(g.nodes.map((n) => [n.label.split('\n')[0], n]));
  assert.equal(byName.get('sleepy')!.label, 'sleepy\nsuspended (1/1 asleep)');
  assert.deepEqual(byName.get('sleepy')!.instances, { running: 0, total: 1, suspended: 1 });
  assert.equal(byName.get('half')!.label, 'half\n1/2 running, 1 suspended');
  assert.equal(byName.get('down')!.label, 'down\n0/1 running');
  assert.deepEqual(byName.get('down')!.instances, { running: 0, total: 1 });
});
