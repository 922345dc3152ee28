import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, parseRuleset, type Packet } from './nft-interpreter.ts';
import { renderPathsRuleset, type PathsNetwork } from './nft-paths.ts';
import type { PathModel } from './model.ts';

const model: PathModel = {
  services: [
    { network: 'web', name: 'front', block: '10.231.0.16/28' },
    { network: 'web', name: 'db', block: '10.231.0.32/29' },
    // Networks may share a CIDR on one node: the bridge keeps them apart.
    { network: 'lab', name: 'api', block: '10.231.0.16/28' },
  ],
  paths: [
    { network: 'web', from: { service: 'front' }, to: 'db', proto: 'tcp', ports: [5432, 5432] },
    { network: 'web', from: { cidr: '0.0.0.0/0' }, to: 'front', proto: 'tcp', ports: [80, 80] },
    { network: 'web', from: { cidr: '192.168.1.0/24' }, to: 'front', proto: 'tcp', ports: [80, 90] },
    { network: 'web', from: { cidr: '192.168.1.7/32' }, to: 'front', proto: 'udp', ports: [8000, 8100] },
    { network: 'lab', from: { service: 'api' }, to: 'api', proto: 'udp', ports: [53, 53] },
  ],
};
const networks: PathsNetwork[] = [
  { name: 'web', bridge: 'bt-web', gateway: '10.231.0.1' },
  { name: 'lab', bridge: 'bt-lab', gateway: '10.231.0.1' },
];

test('renders the golden paths table: sets keyed by bridge and service block, overlapping paths in a second set', () => {
  assert.equal(
    renderPathsRuleset(model, networks),
    `table inet butter_paths
delete table inet butter_paths

table inet butter_paths {
	set instances {
		type ifname . ipv4_addr
		flags interval
		elements = { "bt-web" . 10.231.0.16/28, "bt-web" . 10.231.0.32/29, "bt-lab" . 10.231.0.16/28 }
	}
	set dhcp {
		type ifname . ipv4_addr
		elements = { "bt-web" . 10.231.0.1, "bt-lab" . 10.231.0.1 }
	}
	set paths_0 {
		type ifname . ipv4_addr . ipv4_addr . inet_proto . inet_service
		flags interval
		elements = { "bt-lab" . 10.231.0.16/28 . 10.231.0.16/28 . udp . 53, "bt-web" . 10.231.0.16/28 . 0.0.0.0/0 . tcp . 80, "bt-web" . 10.231.0.16/28 . 192.168.1.7 . udp . 8000-8100, "bt-web" . 10.231.0.32/29 . 10.231.0.16/28 . tcp . 5432 }
	}
	set paths_1 {
		type ifname . ipv4_addr . ipv4_addr . inet_proto . inet_service
		flags interval
		elements = { "bt-web" . 10.231.0.16/28 . 192.168.1.0/24 . tcp . 80-90 }
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		oifname . ip daddr != @instances accept
		ct state established ct direction reply accept
		ct state related accept
		oifname . ip saddr @dhcp udp sport 67 udp dport 68 accept
		oifname . ip daddr . ip saddr . meta l4proto . th dport @paths_0 accept
		oifname . ip daddr . ip saddr . meta l4proto . th dport @paths_1 accept
		drop
	}
}
`,
  );
});

test('no services and no paths: the same table shape, empty sets, one path set; nothing is an instance, so nothing drops', () => {
  const text = renderPathsRuleset({ services: [], paths: [] }, networks.slice(0, 1));
  assert.match(text, /set instances \{\n\t\ttype ifname \. ipv4_addr\n\t\tflags interval\n\t\}/);
  assert.match(text, /set paths_0 \{/);
  assert.doesNotMatch(text, /paths_1/);
  const pkt: Packet = { iif: 'bt-web', oif: 'bt-web', saddr: '10.231.0.5', daddr: '10.231.0.20', proto: 'tcp', sport: 4000, dport: 22, ct: 'new', dir: 'original' };
  assert.equal(evaluate(parseRuleset(text), 'forward', pkt), 'accept');
});

test('a path whose service went admits nothing; a path of a network the node lacks is left out', () => {
  const text = renderPathsRuleset(
    {
      services: [{ network: 'web', name: 'db', block: '10.231.0.32/29' }],
      paths: [
        { network: 'web', from: { service: 'gone' }, to: 'db', proto: 'tcp', ports: [1, 1] },
        { network: 'web', from: { cidr: '10.0.0.0/8' }, to: 'gone', proto: 'tcp', ports: [1, 1] },
        { network: 'other', from: { cidr: '10.0.0.0/8' }, to: 'db', proto: 'tcp', ports: [2, 2] },
      ],
    },
    networks.slice(0, 1),
  );
  assert.match(text, /set paths_0 \{\n\t\ttype [^\n]+\n\t\tflags interval\n\t\}/);
});

test('overlapping service blocks in one network and bad interface names are refused', () => {
  const bad: PathModel = { services: [{ network: 'web', name: 'a', block: '10.0.0.0/28' }, { network: 'web', name: 'b', block: '10.0.0.8/29' }], paths: [] };
  assert.throws(() => renderPathsRuleset(bad, networks.slice(0, 1)), /services a and b of network web have overlapping blocks/);
  assert.throws(() => renderPathsRuleset(model, [{ name: 'web', bridge: 'bt web; drop', gateway: '10.231.0.1' }]), /bad interface name/);
});

test('the golden table, read back: what it admits and what it drops', () => {
  const rs = parseRuleset(renderPathsRuleset(model, networks));
  const v = (p: Partial<Packet>) => evaluate(rs, 'forward', { iif: 'bt-web', oif: 'bt-web', saddr: '10.231.0.20', daddr: '10.231.0.33', proto: 'tcp', sport: 40000, dport: 5432, ct: 'new', dir: 'original', ...p });
  assert.equal(v({}), 'accept', 'front -> db:5432');
  assert.equal(v({ dport: 5433 }), 'drop', 'front -> db:5433');
  assert.equal(v({ saddr: '10.231.0.2' }), 'drop', 'a VM in no service -> db:5432');
  assert.equal(v({ saddr: '10.231.0.34', daddr: '10.231.0.35' }), 'drop', 'db -> db: no path from db to itself');
  assert.equal(v({ proto: 'udp' }), 'drop', 'front -> db:5432/udp');
  assert.equal(v({ proto: 'icmp', dport: 5432 }), 'drop', 'ICMP to an instance');
  assert.equal(v({ ct: 'established', dir: 'reply', saddr: '10.231.0.2', dport: 1 }), 'accept', 'replies flow');
  assert.equal(v({ ct: 'established', dir: 'original' }), 'accept', 'an open connection on a path flows on');
  assert.equal(v({ ct: 'established', dir: 'original', dport: 5433 }), 'drop', 'an open connection on no path (its path removed) is cut');
  assert.equal(v({ ct: 'related', proto: 'icmp' }), 'accept', 'related ICMP flows');
  assert.equal(v({ saddr: '10.231.0.1', proto: 'udp', sport: 67, dport: 68 }), 'accept', "DHCP from the gateway");
  assert.equal(v({ saddr: '10.231.0.2', proto: 'udp', sport: 67, dport: 68 }), 'drop', 'DHCP from anyone else');
  assert.equal(v({ daddr: '10.231.0.1', saddr: '10.231.0.33', proto: 'udp', dport: 53 }), 'accept', 'DNS to the gateway: not to an instance');
  assert.equal(v({ daddr: '10.231.0.2', saddr: '10.231.0.33', dport: 22 }), 'accept', 'to a VM in no service: as before');
  assert.equal(v({ daddr: '10.231.0.20', saddr: '8.8.8.8', dport: 80 }), 'accept', 'the internet -> front:80');
  assert.equal(v({ daddr: '10.231.0.20', saddr: '8.8.8.8', dport: 81 }), 'drop', 'the internet -> front:81');
  assert.equal(v({ daddr: '10.231.0.20', saddr: '192.168.1.9', dport: 85 }), 'accept', 'the LAN -> front:85');
  assert.equal(v({ daddr: '10.231.0.20', saddr: '192.168.1.9', proto: 'udp', dport: 8050 }), 'drop', 'only .7 of the LAN on udp');
  assert.equal(v({ daddr: '10.231.0.20', saddr: '192.168.1.7', proto: 'udp', dport: 8050 }), 'accept', '.7 on udp');
  // Same addresses, other bridge: the lab network's api admits only itself on udp/53.
  assert.equal(v({ iif: 'bt-lab', oif: 'bt-lab', daddr: '10.231.0.20', saddr: '8.8.8.8', dport: 80 }), 'drop', 'lab: the internet path of web does not apply');
  assert.equal(v({ iif: 'bt-lab', oif: 'bt-lab', daddr: '10.231.0.20', saddr: '10.231.0.21', proto: 'udp', dport: 53 }), 'accept', 'lab: api -> api:53/udp');
  assert.equal(v({ iif: 'bt-lab', oif: 'bt-lab', daddr: '10.231.0.33', saddr: '10.231.0.20', dport: 5432 }), 'accept', 'lab has no db: .33 is no instance there');
  assert.equal(v({ iif: 'eth0', oif: 'eth1', daddr: '10.231.0.33', saddr: '1.2.3.4' }), 'accept', 'not a Butter bridge: not this table');
});
