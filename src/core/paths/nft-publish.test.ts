import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DesiredPublished } from '../../api/schemas/desired.ts';
import { gatewayPublished, gatewayPublishRules, publishTargets, renderPublishRuleset, type PublishInput } from './nft-publish.ts';
import { renderGatewayNft, uplinkOf } from '../gateway-ns.ts';
import { evaluate, parseRuleset, type Packet } from './nft-interpreter.ts';
import { renderPathsRuleset } from './nft-paths.ts';

const web: DesiredPublished = {
  network: 'lan',
  service: 'web',
  proto: 'tcp',
  ports: [80, 80],
  hostPorts: [8080, 8080],
  sources: ['0.0.0.0/0'],
  backends: [
    { ip: '10.40.0.18', node: 'n2' },
    { ip: '10.40.0.17', node: 'n1' },
    { ip: '10.40.0.19', node: 'n3' },
  ],
};
const api: DesiredPublished = { ...web, service: 'api', proto: 'udp', ports: [9000, 9001], hostPorts: [19000, 19001], sources: ['192.168.1.0/24', '192.168.0.0/16', '10.9.0.7/32'], backends: [{ ip: '10.40.0.33', node: 'n2' }] };

const n1: PublishInput = {
  node: 'n1',
  mesh: { iface: 'btwg0', address: '100.127.0.1', peers: [{ node: 'n2', address: '100.127.0.2' }, { node: 'n3', address: '100.127.0.3' }] },
  networks: [{ name: 'lan', devices: ['bt-lan', 'btulan'], uplinkNs: '100.126.0.2' }],
  published: [api, web],
};

test('renders the golden published ports table: from outside over every instance, from the mesh to the local ones', () => {
  assert.equal(
    renderPublishRuleset(n1),
    `table inet butter_publish
delete table inet butter_publish

table inet butter_publish {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "btwg0" ip saddr 100.127.0.0/16 ip daddr 100.127.0.1 jump from_mesh
		iifname != { "bt-lan", "btulan", "btwg0" } fib daddr type local jump from_outside
	}
	chain from_outside {
		ip saddr 0.0.0.0/0 tcp dport 8080 ct mark set 0x62740001 dnat ip to numgen random mod 3 map { 0 : 100.126.0.2, 1 : 100.127.0.2, 2 : 100.127.0.3 }
		ip saddr { 10.9.0.7/32, 192.168.0.0/16 } udp dport 19000-19001 ct mark set 0x62740001 dnat ip to 100.127.0.2
	}
	chain from_mesh {
		tcp dport 8080 ct mark set 0x62740001 dnat ip to 100.126.0.2
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "btwg0" ct mark 0x62740001 masquerade
	}
}
`,
  );
});

test('a node with no instance of a service sends all of it over the mesh; with none at all, the port drops', () => {
  const n4: PublishInput = { ...n1, node: 'n4', networks: [], mesh: { ...n1.mesh!, address: '100.127.0.4', peers: [...n1.mesh!.peers, { node: 'n1', address: '100.127.0.1' }] } };
  assert.deepEqual(publishTargets(web, n4), ['100.127.0.1', '100.127.0.2', '100.127.0.3']);
  const text = renderPublishRuleset({ ...n4, published: [web, { ...api, backends: [] }] });
  assert.match(text, /chain from_mesh \{\n\t\}/, 'nothing local to hand mesh arrivals to');
  assert.match(text, /ip saddr \{ 10\.9\.0\.7\/32, 192\.168\.0\.0\/16 \} udp dport 19000-19001 drop/);
  assert.match(text, /fib daddr type local jump from_outside/);
  // Without a mesh only local instances are reachable; nothing is masqueraded.
  const alone = renderPublishRuleset({ ...n1, mesh: undefined });
  assert.match(alone, /ip saddr 0\.0\.0\.0\/0 tcp dport 8080 ct mark set 0x62740001 dnat ip to 100\.126\.0\.2\n/);
  assert.doesNotMatch(alone, /masquerade|from_mesh\n/);
  // A backend on a node the mesh does not know is left out.
  assert.deepEqual(publishTargets({ ...web, backends: [{ ip: '10.40.0.50', node: 'gone' }] }, n1), []);
});

test('refuses input that would inject into the ruleset', () => {
  assert.throws(() => renderPublishRuleset({ ...n1, mesh: { ...n1.mesh!, iface: 'x" accept' } }), /interface name/);
  assert.throws(() => renderPublishRuleset({ ...n1, published: [{ ...web, sources: ['0.0.0.0/0; drop'] }] }), /./);
  assert.throws(() => renderPublishRuleset({ ...n1, published: [{ ...web, hostPorts: [0, 0] }] }), /port/);
  assert.throws(() => renderPublishRuleset({ ...n1, networks: [{ ...n1.networks[0]!, uplinkNs: '1.2.3' }] }), /IPv4/);
  assert.throws(() => gatewayPublishRules([{ proto: 'tcp', hostPorts: [80, 81], ports: [80, 80], backends: ['10.0.0.1'] }]), /differ in length/);
  assert.throws(() => gatewayPublishRules([{ proto: 'tcp', hostPorts: [80, 80], ports: [80, 80], backends: ['10.0.0.1 accept'] }]), /IPv4/);
});

test("the gateway namespace DNATs each host port to its local instances' port, keeping the client's address", () => {
  const pub = gatewayPublished('n2', 'lan', [web, api]);
  assert.deepEqual(pub, [
    { proto: 'tcp', hostPorts: [8080, 8080], ports: [80, 80], backends: ['10.40.0.18'] },
    { proto: 'udp', hostPorts: [19000, 19001], ports: [9000, 9001], backends: ['10.40.0.33'] },
  ]);
  assert.deepEqual(gatewayPublished('n4', 'lan', [web, api]), [], 'no local instance: nothing');
  const two = gatewayPublishRules([{ proto: 'tcp', hostPorts: [8080, 8081], ports: [80, 81], backends: ['10.40.0.17', '10.40.0.18'] }]);
  assert.deepEqual(two, [
    'tcp dport 8080 dnat ip to numgen random mod 2 map { 0 : 10.40.0.17 . 80, 1 : 10.40.0.18 . 80 }',
    'tcp dport 8081 dnat ip to numgen random mod 2 map { 0 : 10.40.0.17 . 81, 1 : 10.40.0.18 . 81 }',
  ]);
  const u = uplinkOf(101);
  const text = renderGatewayNft({ gateway: '10.40.0.1', nat: false, uplink: u, metadataPort: 80, published: pub });
  assert.match(text, new RegExp(`\\t\\tiifname "up0" ip daddr ${u.ns} tcp dport 8080 dnat ip to 10\\.40\\.0\\.18:80\\n`));
  assert.match(text, new RegExp(`\\t\\tiifname "up0" ip daddr ${u.ns} udp dport 19001 dnat ip to 10\\.40\\.0\\.33:9001\\n`));
  // Forwarded to the bridge only what it DNATed (and the host itself, as before); no masquerade: the paths table sees the client.
  assert.match(text, /iifname "up0" oifname "gw0" ct status dnat accept/);
  assert.doesNotMatch(text, /masquerade/);
  assert.doesNotMatch(renderGatewayNft({ gateway: '10.40.0.1', nat: false, uplink: u, metadataPort: 80 }), /iifname "up0" oifname "gw0" ct status dnat accept|iifname "up0" ip daddr/, 'without published ports the namespace is as before');
});

test("on the instance's bridge, mesh sources are admitted to the published ports only, and clients by the path's CIDR", () => {
  const model = {
    services: [{ network: 'lan', name: 'web', block: '10.40.0.16/29' }],
    paths: [{ network: 'lan', from: { cidr: '192.168.1.0/24' }, to: 'web', proto: 'tcp' as const, ports: [80, 80] as const }],
  };
  const table = parseRuleset(renderPathsRuleset(model, [{ name: 'lan', bridge: 'bt-lan', gateway: '10.40.0.1' }], [{ network: 'lan', service: 'web', proto: 'tcp', ports: [80, 80] }]));
  const pkt = (saddr: string, dport: number): Packet => ({ iif: 'bt-lan', oif: 'bt-lan', saddr, daddr: '10.40.0.17', proto: 'tcp', sport: 40000, dport, ct: 'new', dir: 'original' });
  assert.equal(evaluate(table, 'forward', pkt('100.127.0.1', 80)), 'accept', 'from another node: admitted to the published port');
  assert.equal(evaluate(table, 'forward', pkt('100.127.0.1', 22)), 'drop', 'from another node: nothing else');
  assert.equal(evaluate(table, 'forward', pkt('192.168.1.9', 80)), 'accept', 'a client of the CIDR, directly');
  assert.equal(evaluate(table, 'forward', pkt('10.251.0.230', 80)), 'drop', 'anyone else, directly');
});
