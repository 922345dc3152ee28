import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VXLAN_PORT } from './fdb-plan.ts';
import { gatewayMac } from './network-macs.ts';
import { renderNftDelete, renderNftRuleset, RULESET_TABLES, type NftNetwork } from './nft-rules.ts';

const web: NftNetwork = {
  name: 'web',
  bridge: 'bt-web',
  cidr: '10.231.0.0/24',
  gateway: '10.231.0.1',
  nat: true,
  ports: [{ tap: 'bt-web-1', mac: '52:54:00:AB:CD:01', ip: '10.231.0.10' }],
  uplink: { device: 'btuweb', root: '100.126.0.5', ns: '100.126.0.6' },
};
const O = { metadataPort: 80 };

test('renders the golden ruleset of one NAT network with one port', () => {
  assert.equal(
    renderNftRuleset([web], O),
    `table inet butter
delete table inet butter
table bridge butter
delete table bridge butter

table inet butter {
	chain input {
		type filter hook input priority filter; policy accept;
		udp dport 4789 drop
		iifname "btuweb" ip daddr 100.126.0.5 tcp dport 80 accept
		iifname { "btuweb" } ct state established,related accept
		iifname { "bt-web", "btuweb" } drop
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "bt-web" oifname "bt-web" accept
		oifname { "btuweb" } ct state established,related accept
		oifname { "bt-web", "btuweb" } drop
		iifname { "btuweb" } ip daddr { 100.127.0.0/16, 100.126.0.0/16 } drop
		iifname "btuweb" accept
		iifname { "bt-web", "btuweb" } drop
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 100.126.0.6 oifname != "btuweb" masquerade
	}
}

table bridge butter {
	chain prerouting {
		type filter hook prerouting priority filter; policy accept;
		iifname vmap { "bt-web-1" : jump port_bt_2dweb_2d1 }
	}
	chain port_bt_2dweb_2d1 {
		ether saddr != 52:54:00:ab:cd:01 drop
		ether type != { ip, arp } drop
		ip saddr 0.0.0.0 udp sport 68 udp dport 67 return
		ip saddr != 10.231.0.10 drop
		arp saddr ether != 52:54:00:ab:cd:01 drop
		arp saddr ip != { 10.231.0.10, 0.0.0.0 } drop
	}
}
`,
  );
});

test('a network without NAT gets no masquerade and no egress', () => {
  const text = renderNftRuleset([{ ...web, nat: false }], O);
  assert.doesNotMatch(text, /masquerade/);
  assert.doesNotMatch(text, /iifname "btuweb" accept/);
  assert.match(text, /iifname \{ "bt-web", "btuweb" \} drop/);
});

test('no networks still renders the tables, replacing whatever was there: empty but for the closed VXLAN port', () => {
  const text = renderNftRuleset([], O);
  assert.ok(text.startsWith(renderNftDelete(RULESET_TABLES)));
  // Only its own two: the paths and published ports' tables are loaded on their own.
  assert.doesNotMatch(text, /butter_paths|butter_publish/);
  assert.match(text, /table inet butter \{\n\tchain input \{\n\t\ttype filter hook input priority filter; policy accept;\n\t\tudp dport 4789 drop\n\t\}/);
  assert.doesNotMatch(text.replace('udp dport 4789 drop', ''), /vmap|drop/);
});

test('VXLAN reaches the host only over the mesh from mesh addresses; without a mesh, never', () => {
  const input = (text: string) => text.slice(text.indexOf('chain input'), text.indexOf('chain forward')).split('\n').map((l) => l.trim());
  // Before any network exists (the VXLAN device may come first), and with networks.
  for (const networks of [[], [web]]) {
    const meshed = input(renderNftRuleset(networks, { ...O, mesh: 'btwg0' }));
    const accept = meshed.indexOf(`iifname "btwg0" ip saddr 100.127.0.0/16 udp dport ${VXLAN_PORT} accept`);
    assert.ok(accept >= 0 && accept < meshed.indexOf(`udp dport ${VXLAN_PORT} drop`), meshed.join('\n'));
    const alone = input(renderNftRuleset(networks, O));
    assert.ok(alone.includes(`udp dport ${VXLAN_PORT} drop`) && !alone.some((r) => r.includes(`dport ${VXLAN_PORT} accept`)), alone.join('\n'));
  }
});

test('from 0.0.0.0 a port passes DHCP only (client to server port), before the address check drops the rest', () => {
  const text = renderNftRuleset([web], O);
  const port = text.slice(text.indexOf('chain port_bt_2dweb_2d1')).split('\n').map((l) => l.trim());
  const dhcp = port.indexOf('ip saddr 0.0.0.0 udp sport 68 udp dport 67 return');
  assert.ok(dhcp >= 0 && dhcp < port.indexOf('ip saddr != 10.231.0.10 drop'), port.join('\n'));
  // No other rule lets 0.0.0.0 by for IP; ARP probes (RFC 5227) keep it.
  assert.deepEqual(port.filter((r) => r.includes('0.0.0.0')), ['ip saddr 0.0.0.0 udp sport 68 udp dport 67 return', 'arp saddr ip != { 10.231.0.10, 0.0.0.0 } drop']);
});

test('the delete text declares each table before deleting it, so it never fails', () => {
  assert.equal(
    renderNftDelete(),
    'table inet butter\ndelete table inet butter\ntable bridge butter\ndelete table bridge butter\ntable inet butter_paths\ndelete table inet butter_paths\ntable inet butter_publish\ndelete table inet butter_publish\n',
  );
});

test('rejects names and addresses that would inject into the ruleset', () => {
  assert.throws(() => renderNftRuleset([{ ...web, bridge: 'x" accept' }], O), /interface name/);
  assert.throws(() => renderNftRuleset([{ ...web, ports: [{ tap: 't', mac: 'zz', ip: '10.231.0.2' }] }], O), /MAC/);
  assert.throws(() => renderNftRuleset([{ ...web, gateway: '10.231.0.256' }], O), /IPv4/);
});

test('nothing is routed into another network, the mesh or the uplinks before egress is accepted; the mesh is fenced', () => {
  const other: NftNetwork = { ...web, name: 'other', bridge: 'bt-other', cidr: '10.232.0.0/24', gateway: '10.232.0.1', ports: [], uplink: { device: 'btuother', root: '100.126.0.9', ns: '100.126.0.10' } };
  const text = renderNftRuleset([web, other], { metadataPort: 80, mesh: 'btwg0' });
  const forward = text.slice(text.indexOf('chain forward'), text.indexOf('chain postrouting'));
  const at = (rule: string) => {
    const i = forward.indexOf(rule);
    assert.ok(i >= 0, `${rule} in\n${forward}`);
    return i;
  };
  // A NAT network's egress accept comes after the drops into any network, the mesh and the uplinks.
  const egress = at('iifname "btuweb" accept');
  assert.ok(at('oifname { "bt-web", "bt-other", "btuweb", "btuother" } drop') < egress);
  assert.ok(at('ip daddr { 100.127.0.0/16, 100.126.0.0/16 } drop') < egress);
  assert.ok(at('iifname { "btuweb", "btuother" } oifname "btwg0" drop') < egress);
  const input = text.slice(text.indexOf('chain input'), text.indexOf('chain forward'));
  assert.ok(input.includes('iifname "btwg0" ip saddr != 100.127.0.0/16 drop'), input);
});

test("a network over VXLAN: its gateway's own frames neither enter nor leave by the VXLAN port, before the bridge can learn from them", () => {
  const text = renderNftRuleset([{ ...web, overlay: { device: 'btxweb' } }], O);
  const bridge = text.slice(text.indexOf('table bridge butter {'));
  const pre = bridge.slice(bridge.indexOf('chain prerouting'), bridge.indexOf('chain forward'));
  const fwd = bridge.slice(bridge.indexOf('chain forward'));
  const mac = gatewayMac('web');
  // In prerouting: the bridge learns source MACs after that hook, so a drop there teaches it nothing.
  assert.ok(pre.includes(`iifname "btxweb" ether saddr ${mac} drop`), pre);
  assert.ok(fwd.includes(`oifname "btxweb" ether saddr ${mac} drop`), fwd);
  // Another network's gateway MAC is its own.
  assert.notEqual(gatewayMac('other'), mac);
});
