import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProbeCounters, renderProbeTable, renderProbeTableDelete } from './probe-table.ts';

test('the probe table: one counted drop per packet, everything else from the port dropped, nothing to the host', () => {
  const text = renderProbeTable('0a1b', 'bprobe0a1b', [
    { src: '10.0.0.16', dst: '10.0.0.33', proto: 'tcp', port: 5432 },
    { src: '10.0.0.32', dst: '10.0.0.33', proto: 'udp', port: 7946 },
  ]);
  assert.equal(
    text,
    `table bridge butter_probe_0a1b {
\tcounter c0 {
\t}
\tcounter c1 {
\t}
\tchain forward {
\t\ttype filter hook forward priority 100; policy accept;
\t\tiifname "bprobe0a1b" ip saddr 10.0.0.16 ip daddr 10.0.0.33 meta l4proto tcp th dport 5432 counter name "c0" drop
\t\tiifname "bprobe0a1b" ip saddr 10.0.0.32 ip daddr 10.0.0.33 meta l4proto udp th dport 7946 counter name "c1" drop
\t\tiifname "bprobe0a1b" drop
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tiifname "bprobe0a1b" drop
\t}
}
`,
  );
  assert.equal(renderProbeTableDelete('0a1b'), 'table bridge butter_probe_0a1b\ndelete table bridge butter_probe_0a1b\n');
});

test('nothing unchecked reaches the text', () => {
  const ok = { src: '10.0.0.16', dst: '10.0.0.33', proto: 'tcp' as const, port: 5432 };
  assert.throws(() => renderProbeTable('0a1b; flush ruleset', 'bprobe0', [ok]), /bad probe run id/);
  assert.throws(() => renderProbeTable('0a1b', 'a" drop', [ok]), /bad interface name/);
  assert.throws(() => renderProbeTable('0a1b', 'bprobe0', [{ ...ok, src: '10.0.0.16 accept' }]));
  assert.throws(() => renderProbeTable('0a1b', 'bprobe0', [{ ...ok, port: 0 }]), /bad port/);
  assert.throws(() => renderProbeTable('0a1b', 'bprobe0', [{ ...ok, proto: 'icmp' as 'tcp' }]), /bad protocol/);
});

test('counters read back from nft list counters', () => {
  const listed = `table bridge butter_probe_0a1b {
\tcounter c0 {
\t\tpackets 1 bytes 60
\t}

\tcounter c1 {
\t\tpackets 0 bytes 0
\t}
}
`;
  assert.deepEqual([...parseProbeCounters(listed)], [[0, 1], [1, 0]]);
});
