// The panel pages' pure parts: the graph's layout and which paths an edge stands for, and
// the VPN key the browser makes (here over Node's WebCrypto, the same API), checked against
// the agent's own X25519 code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { publicKeyOf } from '../src/core/wireguard-keys.ts';
import { WG_KEY } from '../src/core/wireguard-config.ts';
import { buildGraph } from '../src/core/graph/model.ts';
import type { Path } from '../src/api/schemas/path.ts';
import { layoutGraph, NODE_H, NODE_W, pathsOfEdge } from '../panel/src/pages/services/graph-layout.ts';
import { makeWireguardKey } from '../panel/src/pages/networks/wg-key.ts';

const path = (id: string, from: Path['from'], to: string, port: number, network = 'default'): Path => ({
  id,
  network,
  from,
  to,
  proto: 'tcp',
  ports: [port, port],
  hostPorts: null,
  text: `${'service' in from ? from.service : from.cidr} -> ${to}:${port}/tcp`,
  createdAt: '2026-12-01T00:00:00.000Z',
});

test('the graph layout places every node once, inside its network, and draws one edge per pair', () => {
  const paths = [
    path('000000000001', { cidr: '0.0.0.0/0' }, 'front', 80),
    path('000000000002', { service: 'front' }, 'back', 8080),
    path('000000000003', { service: 'front' }, 'back', 9090),
    path('000000000004', { service: 'back' }, 'front', 7000), // a cycle
    path('000000000005', { cidr: '10.9.0.0/24' }, 'db', 5432, 'other'),
  ];
  const g = buildGraph({
    networks: [
      { name: 'default', cidr: '10.0.0.0/16' },
      { name: 'other', cidr: '10.1.0.0/16' },
    ],
    services: [
      { name: 'front', network: 'default', running: 1, total: 2 },
      { name: 'back', network: 'default', running: 2, total: 2 },
      { name: 'db', network: 'other', running: 0, total: 1 },
    ],
    paths: paths.map((p) => ({ ...p, from: p.from, ports: [p.ports[0], p.ports[1]] })) as never,
  });
  const l = layoutGraph({ ...g, revision: 1 });
  assert.deepEqual(l.nodes.map((n) => n.id).sort(), g.nodes.map((n) => n.id).sort());
  for (const n of l.nodes) {
    assert.ok(n.x >= 0 && n.y >= 0 && n.x + NODE_W <= l.width && n.y + NODE_H <= l.height, `${n.id} inside the drawing`);
    if (n.node.kind !== 'service') continue;
    const c = l.clusters.find((k) => k.network === n.node.network)!;
    assert.ok(n.x >= c.x && n.y >= c.y && n.x + NODE_W <= c.x + c.w && n.y + NODE_H <= c.y + c.h, `${n.id} inside the box of ${c.network}`);
  }
  // No two nodes overlap.
  for (const a of l.nodes) for (const b of l.nodes) if (a !== b) assert.ok(Math.abs(a.x - b.x) >= NODE_W || Math.abs(a.y - b.y) >= NODE_H, `${a.id} and ${b.id} overlap`);
  // front's two paths to back are one edge, labelled with both ports; and it stands for those two paths.
  const fb = l.edges.find((e) => e.from === 'service:front' && e.to === 'service:back')!;
  assert.equal(fb.label, 'tcp:8080, tcp:9090');
  assert.deepEqual(pathsOfEdge(fb, paths).map((p) => p.id), ['000000000002', '000000000003']);
  const inet = l.edges.find((e) => e.from === 'internet')!;
  assert.deepEqual(pathsOfEdge(inet, paths).map((p) => p.id), ['000000000001']);
  assert.equal(l.edges.length, 4);
  // The chain internet -> front -> back goes left to right.
  const x = (id: string) => l.nodes.find((n) => n.id === id)!.x;
  assert.ok(x('internet') < x('service:front') && x('service:front') < x('service:back'));
});

test('the browser-made VPN key is a WireGuard key pair: its public half is the X25519 of its private half', async () => {
  const k = await makeWireguardKey(globalThis.crypto.subtle);
  assert.ok(k, 'WebCrypto X25519 is available');
  assert.match(k.privateKey, WG_KEY);
  assert.match(k.publicKey, WG_KEY);
  assert.equal(publicKeyOf(k.privateKey), k.publicKey);
  assert.equal(await makeWireguardKey(null), null, 'no SubtleCrypto (not a secure context): no key, the page asks for one');
});
