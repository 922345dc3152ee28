import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayDevices, renderGatewayNft, uplinkOf } from './gateway-ns.ts';

test('each network gets its own /30 uplink from its VNI, the same on every node', () => {
  assert.deepEqual(uplinkOf(100), { root: '100.126.0.1', ns: '100.126.0.2' });
  assert.deepEqual(uplinkOf(101), { root: '100.126.0.5', ns: '100.126.0.6' });
  assert.deepEqual(uplinkOf(100 + 16383), { root: '100.126.255.253', ns: '100.126.255.254' });
  assert.deepEqual(gatewayDevices('lan', 101), { gatewayPort: 'btglan', uplink: { device: 'btulan', root: '100.126.0.5', ns: '100.126.0.6', table: 536871013 } });
});

test("renders the gateway namespace's ruleset (golden): metadata forwarded with the guest's address, NAT egress", () => {
  assert.equal(
    renderGatewayNft({ gateway: '10.20.0.1', nat: true, uplink: { root: '100.126.0.5', ns: '100.126.0.6' }, metadataPort: 80 }),
    `table inet butter
delete table inet butter
table inet butter {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "gw0" ip daddr 169.254.169.254 tcp dport 80 dnat ip to 100.126.0.5:80
	}
	chain input {
		type filter hook input priority filter; policy drop;
		iif lo accept
		ct state established,related accept
		iifname "gw0" udp dport 67 accept
		iifname "gw0" ip daddr 10.20.0.1 meta l4proto { tcp, udp } th dport 53 accept
		iifname "gw0" meta l4proto icmp accept
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "gw0" oifname "up0" ip daddr 100.126.0.5 tcp dport 80 accept
		iifname "up0" ip saddr 100.126.0.5 oifname "gw0" accept
		iifname "gw0" oifname "up0" accept
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "up0" ip daddr != 100.126.0.5 masquerade
	}
}
`,
  );
  // Without NAT: the metadata forward only.
  const isolated = renderGatewayNft({ gateway: '10.20.0.1', nat: false, uplink: { root: '100.126.0.5', ns: '100.126.0.6' }, metadataPort: 8080 });
  assert.doesNotMatch(isolated, /masquerade|oifname "up0" accept/);
  assert.match(isolated, /dnat ip to 100\.126\.0\.5:8080/);
});
