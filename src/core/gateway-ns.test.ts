import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayDevices, renderGatewayNft, TOKEN_REPLY_PREFIX, uplinkOf } from './gateway-ns.ts';

test('each network gets its own /30 uplink from its VNI, the same on every node', () => {
  assert.deepEqual(uplinkOf(100), { root: '100.126.0.1', ns: '100.126.0.2' });
  assert.deepEqual(uplinkOf(101), { root: '100.126.0.5', ns: '100.126.0.6' });
  assert.deepEqual(uplinkOf(100 + 16383), { root: '100.126.255.253', ns: '100.126.255.254' });
  assert.deepEqual(gatewayDevices('lan', 101), { gatewayPort: 'btglan', uplink: { device: 'btulan', root: '100.126.0.5', ns: '100.126.0.6', table: 536871013 } });
});

test("renders the gateway namespace's ruleset (golden): metadata forwarded with the guest's address, token replies limited to one hop, NAT egress", () => {
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
	chain metadata_reply {
		ct mark 0x0 @ih,136,128 0x782d6177732d6563322d6d6574616461 ct mark set 0x1
		ct mark 0x0 @ih,136,128 != 0x782d6177732d6563322d6d6574616461 ct mark set 0x2
		ct mark 0x0 @ih,0,8 0-255 ct mark set 0x1
		ct mark 0x1 ip ttl set 1
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		iifname "up0" oifname "gw0" ip saddr 100.126.0.5 tcp sport 80 ct direction reply jump metadata_reply
		ct state established,related accept
		iifname "gw0" oifname "up0" ip daddr 100.126.0.5 tcp dport 80 ct status dnat accept
		iifname "gw0" ip daddr 100.126.0.5 drop
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
  assert.match(isolated, /ip saddr 100\.126\.0\.5 tcp sport 8080 ct direction reply jump metadata_reply/);
});

test('the marker the namespace matches is the token reply prefix after its status line', () => {
  assert.equal(TOKEN_REPLY_PREFIX.indexOf('x-aws'), 136 / 8);
  assert.equal(Buffer.from(TOKEN_REPLY_PREFIX.slice(17, 33), 'latin1').toString('hex'), '782d6177732d6563322d6d6574616461');
});
